"""TLS for a transfer, made on first use: plain-http registries (loopback, ``insecure``) never pay for it.

Loading the CA bundle into an SSL context takes about 25 ms on the development machine, and an
``httpx.Client`` builds one when it is made, even if it only ever speaks plain http. A pull makes two clients
(the registry's and the token service's) and used to make one more context per ranged connection, which was a
tenth of a whole pull from a loopback registry. Here one ``TlsContext`` per transfer builds the context
(httpx's: certifi's bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``) when the first https connection needs
it and shares it; ``LazyTlsTransport`` is the httpx transport that asks for it only for ``https://`` URLs.
"""

from __future__ import annotations

import ssl
import threading

import httpx


class TlsContext:
    """One verifying SSL context, built on the first ``get`` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None

    def get(self) -> ssl.SSLContext:
        with self._lock:
            if self._context is None:
                self._context = httpx.create_ssl_context()
            return self._context


class LazyTlsTransport(httpx.BaseTransport):
    """An httpx transport: ``https://`` requests go through a connection pool made on the first of them with
    ``tls``'s context, everything else through a plain one. The plain pool's own SSL context loads no CA and
    keeps hostname checks on, so it would refuse any certificate; it never sees TLS."""

    def __init__(self, tls: TlsContext, limits: httpx.Limits) -> None:
        self._tls = tls
        self._limits = limits
        self._lock = threading.Lock()
        self._plain = httpx.HTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), limits=limits)
        self._secure: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https":
            return self._plain.handle_request(request)
        with self._lock:
            if self._secure is None:
                self._secure = httpx.HTTPTransport(verify=self._tls.get(), limits=self._limits)
            secure = self._secure
        return secure.handle_request(request)

    def close(self) -> None:
        self._plain.close()
        with self._lock:
            if self._secure is not None:
                self._secure.close()
