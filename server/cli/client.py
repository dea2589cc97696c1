"""The CLI's HTTP client: talks to the server at ``OLLAMA_HOST`` the way Ollama's CLI does."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from server.store.blobs import Digest

UPLOAD_CHUNK = 1 << 20


class ServerUnavailable(Exception):
    """No server answers at the address; the message tells the user what to do."""


class ServerError(Exception):
    """The server answered with an error body."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Client:
    """The CLI's HTTP client; with ``api_key`` (``OLLAMA_API_KEY``) every request carries it as a Bearer token."""

    def __init__(self, base_url: str, *, timeout: float | None = None, api_key: str = "") -> None:
        self.base_url = base_url
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.Client(base_url=base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send a JSON request; returns the decoded JSON body (None for an empty one)."""
        response = self._send(method, path, json=body)
        if not response.content:
            return None
        return response.json()

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """POST and yield each NDJSON object; an ``{"error": ...}`` line raises ``ServerError``."""
        try:
            with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ServerError(_error_text(response), response.status_code)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if isinstance(item, dict) and item.get("error"):
                        raise ServerError(str(item["error"]), response.status_code)
                    yield item
        except httpx.ConnectError as exc:
            raise self._unavailable() from exc

    def upload_blob(self, path: Path, progress: Callable[[int, int], None]) -> Digest:
        """Hash ``path`` and upload it unless the server already has it (``HEAD /api/blobs``)."""
        total = path.stat().st_size
        hasher = hashlib.sha256()
        with path.open("rb") as reader:
            while chunk := reader.read(UPLOAD_CHUNK):
                hasher.update(chunk)
        digest = Digest(hasher.hexdigest())
        head = self._send("HEAD", f"/api/blobs/{digest}", allow=(404,))
        if head.status_code == 200:
            progress(total, total)
            return digest

        def body() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as reader:
                while chunk := reader.read(UPLOAD_CHUNK):
                    sent += len(chunk)
                    progress(sent, total)
                    yield chunk

        self._send("POST", f"/api/blobs/{digest}", content=body())
        return digest

    def _send(self, method: str, path: str, allow: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise self._unavailable() from exc
        if response.status_code >= 400 and response.status_code not in allow:
            raise ServerError(_error_text(response), response.status_code)
        return response

    def _unavailable(self) -> ServerUnavailable:
        return ServerUnavailable(
            f"could not connect to a running Corral server at {self.base_url}: start it with `corral serve` "
            "(or set OLLAMA_HOST to the address of one)"
        )


def _error_text(response: httpx.Response) -> str:
    text = _server_text(response)
    if response.status_code == 401:
        text += " (the server requires an API key: set OLLAMA_API_KEY to one it accepts)"
    return text


def _server_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return response.text
