"""An HTTP proxy between the client and the registry that can misbehave the way networks do.

It forwards every request to the registry on loopback and streams the answer back, and on demand: flips one
byte of a blob's body (``flip``: a digest), limits the body rate (``rate``: bytes per second), answers blob
GETs with a 307 to the registry's own address (``redirect``: a different origin, like object storage),
answers ``fail_status`` (503) to the next ``failures`` requests of one method (``fail_method``; with
``fail_ranged`` only ranged GETs of blob parts), and
counts the blob body bytes it relayed (``relayed``; manifests and error bodies are not counted). A registry
that is down answers 502; one that dies mid-body leaves the client with a short body, as a dropped
connection does.
"""

from __future__ import annotations

import http.client
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_BLOB = re.compile(r"^/v2/.+/blobs/(sha256:[0-9a-f]{64})$")
# Host is passed on: the registry builds upload locations from it, which must lead back through the proxy.
_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}
PIECE = 64 << 10


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-body (a pull cancelled or killed on purpose) is part of the tests.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class WireProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.flip: str | None = None
        self.rate: float | None = None
        self.redirect = False
        self.fail_method: str | None = None
        self.fail_ranged = False
        self.fail_status = 503
        self.failures = 0
        self.relayed = 0
        self.redirected = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _count(self, size: int) -> None:
        with self._lock:
            self.relayed += size

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward()

            def do_HEAD(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def do_PUT(self) -> None:
                self._forward()

            def do_PATCH(self) -> None:
                self._forward()

            def _forward(self) -> None:
                blob = _BLOB.match(self.path.split("?", 1)[0])
                if blob and self.command == "GET" and proxy.redirect:
                    with proxy._lock:
                        proxy.redirected += 1
                    location = f"http://127.0.0.1:{proxy.upstream_port}{self.path}"
                    self._reply(307, {"Location": location}, b"")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    ranged = self.headers.get("Range", "bytes=0-0") != "bytes=0-0"
                    targeted = self.command == proxy.fail_method and (ranged or not proxy.fail_ranged)
                    fail = proxy.failures > 0 and targeted
                    proxy.failures -= fail
                if fail:
                    self._reply(proxy.fail_status, {"Content-Type": "text/plain"}, b"injected failure")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                except OSError:
                    self._reply(502, {"Content-Type": "text/plain"}, b"registry unreachable")
                    return
                try:
                    self._relay(response, blob=blob is not None, flip=blob is not None and blob.group(1) == proxy.flip)
                finally:
                    upstream.close()

            def _relay(self, response: http.client.HTTPResponse, *, blob: bool, flip: bool) -> None:
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP:
                        self.send_header(key, value)
                if response.getheader("Content-Length") is None and self.command != "HEAD":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command == "HEAD":
                    return
                start = time.monotonic()
                sent = 0
                while True:
                    try:
                        piece = response.read(PIECE)
                    except (OSError, http.client.HTTPException):
                        piece = b""
                    if not piece:
                        break
                    if flip and sent == 0:
                        piece = bytes([piece[0] ^ 0xFF]) + piece[1:]
                    self.wfile.write(piece)
                    sent += len(piece)
                    if blob:
                        proxy._count(len(piece))
                    if proxy.rate:
                        ahead = sent / proxy.rate - (time.monotonic() - start)
                        if ahead > 0:
                            time.sleep(ahead)
                if response.length:  # the registry went away mid-body: drop the connection
                    self.close_connection = True

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
