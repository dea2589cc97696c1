"""The outermost middleware: a request id, one log line per request, and the per-request metrics.

- The request id is the client's ``X-Request-ID`` when it sent a usable one (printable, at most 128
  characters), otherwise a new random one; either way it is echoed in the response's ``X-Request-ID`` header.
- When the response has been sent, one line goes to the ``corral.access`` logger: request id, method, route,
  status, model, prompt/output tokens, TTFT, duration, the API key's id, the error if any; the rendered prompt
  only with ``OLLAMA_DEBUG``. ``CORRAL_LOG_FORMAT=json`` makes it a JSON object (see :mod:`.logs`).
- :class:`~.metrics.Metrics` observes the same record, after the response: never while tokens stream.

Plain ASGI, so streaming responses pass through untouched.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics
from .record import STATE_KEY, RequestRecord

log = logging.getLogger("corral.access")

REQUEST_ID = "x-request-id"
MAX_REQUEST_ID = 128


class Routes:
    """Maps a path to the route template metrics label it with (``/api/blobs/{digest}``), ``other`` when no
    route matches: the label set stays bounded whatever paths clients send."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        paths = [r for r in routes if isinstance(r, Route)]
        self._exact = {r.path for r in paths if "{" not in r.path}
        self._templated = [r for r in paths if "{" in r.path]

    def label(self, scope: Scope) -> str:
        path = str(scope["path"])
        if path in self._exact:
            return path
        for route in self._templated:
            match, _ = route.matches({**scope, "type": "http"})
            if match != Match.NONE:
                return str(route.path)
        return "other"


def dialect(path: str) -> str:
    if path.startswith("/v1/"):
        return "openai"
    if path.startswith("/api/"):
        return "native"
    return "other"


def request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text = str(value.decode("latin-1")).strip()
            if 0 < len(text) <= MAX_REQUEST_ID and text.isprintable():
                return text
            break
    return uuid.uuid4().hex


class AccessLog:
    def __init__(self, app: ASGIApp, *, routes: Routes, metrics: Metrics | None) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(
            request_id=request_id(scope),
            method=scope["method"],
            path=scope["path"],
            route=self.routes.label(scope),
            dialect=dialect(scope["path"]),
        )
        scope.setdefault("state", {})[STATE_KEY] = record
        header = (b"x-request-id", record.request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException as exc:
            if not record.status:
                record.status = 500
            if not record.error:
                record.failed(exc)
            raise
        finally:
            record.finished = record.finished or time.perf_counter()
            if not record.status:  # the client left before any response
                record.status = 499
            log.info(line(record), extra={"access": fields(record)})
            if self.metrics is not None:
                self.metrics.observe(record)


def fields(record: RequestRecord) -> dict[str, Any]:
    """The log line's fields; absent values are left out."""
    out: dict[str, Any] = {
        "request_id": record.request_id,
        "method": record.method,
        "route": record.route,
        "path": record.path,
        "status": record.status,
        "duration_ms": round(record.duration * 1000, 1),
    }
    if record.model:
        out["model"] = record.model
    if record.prompt_tokens or record.output_tokens:
        out["prompt_tokens"] = record.prompt_tokens
        out["cached_tokens"] = record.cached_tokens
        out["output_tokens"] = record.output_tokens
    ttft = record.ttft
    if ttft is not None:
        out["ttft_ms"] = round(ttft * 1000, 1)
    if record.key_id:
        out["key_id"] = record.key_id
    if record.error:
        out["error"] = record.error
        out["error_message"] = record.error_text
    if record.prompt:
        out["prompt"] = record.prompt
    return out


def line(record: RequestRecord) -> str:
    """The text form: ``method path status duration`` first, then ``key=value`` pairs."""
    data = fields(record)
    head = f"{data.pop('method')} {data.pop('path')} {data.pop('status')} {data.pop('duration_ms')}ms"
    data.pop("route")
    rest = " ".join(f"{key}={_text(value)}" for key, value in data.items())
    return f"{head} {rest}"


def _text(value: Any) -> str:
    text = str(value)
    return repr(text) if (not text or " " in text or "=" in text or "\n" in text) else text
