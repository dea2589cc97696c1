"""The gates in front of the routes, as plain ASGI middleware (streams pass through untouched): API keys
(:mod:`server.auth`), the drain (:mod:`server.lifecycle`) and the request body limit. They answer with the
dialect's error shape and note what they did on the request record."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import ApiKeys, needs_key
from server.errors import PayloadTooLarge, ShuttingDown, Unauthorized
from server.lifecycle import WORK_ROUTES, Lifecycle
from server.telemetry.record import scope_record

from .errors import render_error


class KeyGate:
    """ASGI middleware: with keys on, answers 401 for a request that needs a key and has no valid one; notes the
    key's id on the request record otherwise."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, *, metrics_open: bool) -> None:
        self.app = app
        self.keys = keys
        self.metrics_open = metrics_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.keys.enabled
            or not needs_key(scope["method"], scope["path"], metrics_open=self.metrics_open)
        ):
            await self.app(scope, receive, send)
            return
        header = next((value for key, value in scope["headers"] if key == b"authorization"), None)
        record = scope_record(scope)
        try:
            record.key_id = self.keys.check(header.decode("latin-1") if header is not None else None)
        except Unauthorized as exc:
            record.failed(exc)
            await render_error(scope["path"], exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class DrainGate:
    """ASGI middleware: counts work routes in flight and refuses new ones while the server drains."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in WORK_ROUTES:
            await self.app(scope, receive, send)
            return
        try:
            self.lifecycle.admit()
        except ShuttingDown as exc:
            scope_record(scope).failed(exc)
            await render_error(scope["path"], exc)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.lifecycle.leave()


class BodyLimit:
    """ASGI middleware: a JSON request body larger than ``limit`` bytes gets 413 before it is held in memory
    (by its Content-Length at once, else when the bytes read pass the limit). Blob uploads stream to disk and
    are not limited."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit or scope["path"].startswith("/api/blobs/"):
            await self.app(scope, receive, send)
            return
        error = PayloadTooLarge(f"request body too large: the limit is {self.limit} bytes (CORRAL_MAX_REQUEST_BYTES)")
        length = next((value for key, value in scope["headers"] if key == b"content-length"), b"")
        if length.isdigit() and int(length) > self.limit:
            scope_record(scope).failed(error)
            await render_error(scope["path"], error)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise error
            return message

        await self.app(scope, counted, send)
