"""TLS made on first use: plain-http requests never build an SSL context, https ones verify certificates
with one context shared by the httpx transports and the ranged reads; against a real TLS server on loopback
with a certificate of the test's own."""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.registry.client import BlobLocation
from server.registry.ranged import read_range
from server.registry.transport import LazyTlsTransport, TlsContext

from .sinks import MemorySink

BODY = bytes(range(256)) * 64


class CountingTls(TlsContext):
    """A ``TlsContext`` that counts how often it was asked for its context."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self.made: set[int] = set()

    def get(self) -> ssl.SSLContext:
        self.asked += 1
        context = super().get()
        self.made.add(id(context))
        return context


class _Handler(BaseHTTPRequestHandler):
    """Serves ``BODY`` at every path, honouring ``Range: bytes=a-b``."""

    def do_GET(self) -> None:
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        start, end = (int(match[1]), int(match[2])) if match else (0, len(BODY) - 1)
        self.send_response(206 if match else 200)
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.wfile.write(BODY[start : end + 1])

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(context: ssl.SSLContext | None) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context else "http"
    yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "corral-test-tls")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def https_url(certificate: tuple[Path, Path]) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    yield from _serve(context)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    yield from _serve(None)


def _client(tls: TlsContext) -> httpx.Client:
    return httpx.Client(transport=LazyTlsTransport(tls, httpx.Limits()))


def test_plain_http_never_builds_a_tls_context(http_url: str) -> None:
    tls = CountingTls()
    with _client(tls) as client:
        assert client.get(f"{http_url}/v2/").content == BODY
    assert tls.asked == 0


def test_https_verifies_the_certificate(https_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    tls = CountingTls()
    with _client(tls) as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get(f"{https_url}/v2/")
    assert tls.asked == 1


def test_one_context_serves_the_clients_and_the_ranged_reads(
    https_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    tls = CountingTls()
    with _client(tls) as registry, _client(tls) as tokens:
        assert registry.get(f"{https_url}/v2/").content == BODY
        assert tokens.get(f"{https_url}/token").content == BODY
        assert registry.get(f"{https_url}/v2/").content == BODY
    location = BlobLocation(url=f"{https_url}/blob", headers={}, tls=tls.get)
    sink = MemorySink()
    read_range(location, 100, 5099, sink, timeout=30)
    assert sink.data == BODY[100:5100]
    assert len(tls.made) == 1
