"""A deliberately broken Ollama look-alike, for proving that the suite catches what it claims to catch.

It answers a few routes correctly (``GET /``, ``/api/show``) and breaks others on purpose:

- ``GET /api/version`` returns ``{"version": 123}`` (a number where the reference has a string);
- ``GET /api/tags`` reports ``size`` as a string;
- ``POST /api/chat`` with an empty model answers 404 instead of 400;
- ``POST /v1/chat/completions`` and ``/v1/completions`` with ``stream`` send SSE without ``data: [DONE]``.

``BrokenServer`` runs it on a free loopback port in a daemon thread (a context manager).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

MODEL = "smollm2:135m"
TAG = {
    "name": MODEL,
    "model": MODEL,
    "modified_at": "2025-05-10T08:06:48.639712648-07:00",
    "size": "98MB",
    "digest": "0" * 64,
    "details": {
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "135M",
        "quantization_level": "Q4_1",
    },
}
CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1733000000,
    "model": MODEL,
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}],
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: object) -> None:
        self._send(status, json.dumps(value).encode(), "application/json; charset=utf-8")

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            value = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif self.path == "/api/version":
            self._json(200, {"version": 123})
        elif self.path == "/api/tags":
            self._json(200, {"models": [TAG]})
        else:
            self._send(404, b"404 page not found", "text/plain")

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/api/show":
            self._json(200, {"details": TAG["details"], "model_info": {}, "capabilities": ["completion"]})
        elif self.path == "/api/chat" and not body.get("model"):
            self._json(404, {"error": "model is required"})
        elif self.path in ("/v1/chat/completions", "/v1/completions") and body.get("stream"):
            stream = f"data: {json.dumps(CHUNK)}\n\n".encode()
            self._send(200, stream, "text/event-stream")
        else:
            self._send(404, b"404 page not found", "text/plain")


class BrokenServer:
    """The broken server on ``127.0.0.1:<free port>``; ``url`` is valid inside the ``with`` block."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
