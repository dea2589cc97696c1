"""The server under test: reaching it, recording what it says about itself, and warming the model.

Works against any Ollama-compatible (``/api/*``) or OpenAI-compatible (``/v1/*``) server: what a server does
not answer is recorded as missing, never guessed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from perf.apis import Api
from perf.workload import Workload


class PerfError(Exception):
    """A load test that cannot start or finish; the message says what to do next."""


@dataclass(frozen=True)
class Target:
    """A named server: ``api`` is the endpoint its load goes to."""

    name: str
    url: str
    api: Api

    def describe(self, model: str, timeout: float = 10.0) -> dict[str, Any]:
        """What the server reports about itself and the model (version, model details, loaded models).
        Raises PerfError when the server cannot be reached."""
        info: dict[str, Any] = {"name": self.name, "url": self.url, "api": self.api.name}
        with httpx.Client(base_url=self.url, timeout=timeout) as client:
            try:
                client.get("/")
            except httpx.HTTPError as exc:
                raise PerfError(f"cannot reach {self.url} ({exc}); start the server or check --url") from exc
            for key, method, path, body in (
                ("version", "GET", "/api/version", None),
                ("show", "POST", "/api/show", {"model": model}),
                ("ps", "GET", "/api/ps", None),
                ("openai_models", "GET", "/v1/models", None),
            ):
                try:
                    response = client.request(method, path, json=body)
                    if response.status_code == 200:
                        info[key] = _trim(response.json())
                except (httpx.HTTPError, ValueError):
                    continue
        return info

    def warm_up(self, workload: Workload, timeout: float = 300.0) -> float:
        """Send one short request so the model is loaded before measuring; returns its seconds.
        Raises PerfError with the server's answer when it fails."""
        body = Workload(workload.model, input_words=8, output_tokens=4, stream=False).body(self.api, "warmup")
        start = time.perf_counter()
        try:
            response = httpx.post(self.url + self.api.path, json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise PerfError(f"warm-up request to {self.url}{self.api.path} failed: {exc}") from exc
        if response.status_code != 200:
            raise PerfError(
                f"warm-up request to {self.url}{self.api.path} returned {response.status_code}: "
                f"{response.text[:200]}; check --model and --api"
            )
        return time.perf_counter() - start


def _trim(data: Any) -> Any:
    """Drop the bulky parts of /api/show (license, template, tensors) from what is recorded."""
    if isinstance(data, dict):
        return {
            k: v for k, v in data.items() if k not in ("license", "modelfile", "template", "tensors", "modified_at")
        }
    return data
