"""Requests the cases send, with the sampling pinned so a 2-core CPU runs the suite in minutes.

``greedy()`` is the option set every behavioural case starts from: temperature 0, a fixed seed and a small
``num_predict``. The helpers return the raw ``httpx.Response`` plus, where useful, the client-side wall time
in nanoseconds (for plausibility checks of the server's durations).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx

SEED = 1234
PROMPT = "Write one short sentence about the sea."
QUESTION = "What is the capital of France?"


def greedy(num_predict: int = 16, **extra: Any) -> dict[str, Any]:
    """Options for a deterministic, short generation."""
    return {"temperature": 0, "seed": SEED, "num_predict": num_predict, **extra}


def timed_post(http: httpx.Client, path: str, body: dict[str, Any]) -> tuple[httpx.Response, int]:
    """POST ``body`` as JSON; returns the response and the wall time in nanoseconds."""
    start = time.perf_counter_ns()
    resp = http.post(path, json=body)
    return resp, time.perf_counter_ns() - start


def generate(http: httpx.Client, model: str, prompt: str = PROMPT, **fields: Any) -> httpx.Response:
    """``POST /api/generate``; ``stream`` defaults to false here (cases about streaming pass it)."""
    body: dict[str, Any] = {"model": model, "prompt": prompt, "stream": False, "options": greedy(), **fields}
    return http.post("/api/generate", json=body)


def chat(http: httpx.Client, model: str, messages: list[dict[str, Any]] | None = None, **fields: Any) -> httpx.Response:
    """``POST /api/chat`` with one user turn by default; ``stream`` defaults to false here."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages if messages is not None else [{"role": "user", "content": PROMPT}],
        "stream": False,
        "options": greedy(),
        **fields,
    }
    return http.post("/api/chat", json=body)


def user(content: str) -> dict[str, str]:
    """A user chat message."""
    return {"role": "user", "content": content}


def ps_entry(http: httpx.Client, model: str) -> dict[str, Any] | None:
    """The ``/api/ps`` item for ``model`` (matched on ``name`` or ``model``, with or without ``:latest``)."""
    names = {model, model if ":" in model else f"{model}:latest"}
    for item in http.get("/api/ps").json().get("models") or []:
        if item.get("name") in names or item.get("model") in names:
            return dict(item)
    return None


def wait_unloaded(http: httpx.Client, model: str, timeout: float = 10.0) -> bool:
    """Poll ``/api/ps`` until ``model`` is gone; True when it went within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ps_entry(http, model) is None:
            return True
        time.sleep(0.2)
    return False


def delete_quietly(http: httpx.Client, name: str) -> None:
    """Remove a model the case created; absence is fine (cleanup must not mask the real failure)."""
    with contextlib.suppress(httpx.HTTPError):
        http.request("DELETE", "/api/delete", json={"model": name})


def display_name(model: str) -> str:
    """The shortest display form with the tag always shown (``llama3.2`` -> ``llama3.2:latest``)."""
    last = model.rsplit("/", 1)[-1]
    return model if ":" in last else f"{model}:latest"


def full_name(model: str) -> str:
    """``host/namespace/model:tag`` with Ollama's defaults filled in (``registry.ollama.ai``, ``library``)."""
    parts = display_name(model).split("/")
    if len(parts) == 1:
        parts = ["library", *parts]
    if len(parts) == 2:
        parts = ["registry.ollama.ai", *parts]
    return "/".join(parts)


def stop_from(text: str) -> tuple[str, str]:
    """A stop sequence taken from the middle of ``text`` and the text expected before it.

    The sequence starts at a non-space character near the middle so that a greedy rerun with it as ``stop``
    must end exactly where it first occurs.
    """
    start = len(text) // 2
    while start < len(text) and text[start].isspace():
        start += 1
    stop = text[start : start + 3]
    return stop, text[: text.index(stop)]
