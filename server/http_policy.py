"""Ollama's HTTP policy: CORS for browser origins and the DNS-rebinding guard on loopback.

- A request with an ``Origin`` header is allowed when the origin matches ``OLLAMA_ORIGINS`` or the built-in
  list (localhost, 127.0.0.1 and 0.0.0.0 on any port, and app/file/tauri/vscode schemes); otherwise it gets
  403. Allowed preflights (``OPTIONS``) get 204 with the allowed methods and headers. Requests without an
  ``Origin`` are not affected.
- When the server listens on a loopback address, the ``Host`` header must name this machine (empty,
  ``localhost``, the hostname, ``*.localhost``, ``*.local``, ``*.internal``, or a loopback, private or
  unspecified IP), so a web page cannot reach the API through a rebound DNS name.

Written as plain ASGI middleware so that streaming responses pass through untouched.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
ALLOWED_HEADERS = (
    "Authorization, Content-Type, User-Agent, Accept, X-Requested-With, OpenAI-Beta, x-stainless-arch, "
    "x-stainless-async, x-stainless-custom-poll-interval, x-stainless-helper-method, x-stainless-lang, "
    "x-stainless-os, x-stainless-package-version, x-stainless-poll-helper, x-stainless-retry-count, "
    "x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout"
)
_BUILT_IN_ORIGINS = [
    f"{scheme}://{host}{port}"
    for scheme in ("http", "https")
    for host in ("localhost", "127.0.0.1", "0.0.0.0")
    for port in ("", ":*")
] + ["app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"]


def allowed_origins(extra: Iterable[str]) -> list[str]:
    return [*extra, *_BUILT_IN_ORIGINS]


def origin_allowed(origin: str, patterns: Iterable[str]) -> bool:
    return any(pattern == "*" or fnmatch.fnmatchcase(origin, pattern) for pattern in patterns)


def host_allowed(host_header: str) -> bool:
    """Whether a ``Host`` header names this machine (see the module docstring)."""
    host = host_header.strip()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    host = host.lower()
    if not host or host == "localhost" or host == socket.gethostname().lower():
        return True
    if host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpPolicy:
    """ASGI middleware applying CORS and (when ``guard_host``) the Host check."""

    def __init__(self, app: ASGIApp, *, origins: Iterable[str], guard_host: bool) -> None:
        self.app = app
        self.origins = allowed_origins(origins)
        self.guard_host = guard_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        if self.guard_host and not host_allowed(headers.get("host", "")):
            await _plain(send, 403, b"")
            return
        origin = headers.get("origin")
        if origin is None:
            if scope["method"] == "OPTIONS" and self.guard_host:
                await _plain(send, 204, b"")
                return
            await self.app(scope, receive, send)
            return
        if not origin_allowed(origin, self.origins):
            await _plain(send, 403, b"")
            return
        cors = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"Origin"),
        ]
        if scope["method"] == "OPTIONS":
            preflight = [
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", b"43200"),
            ]
            await _plain(send, 204, b"", cors + preflight)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _plain(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})
