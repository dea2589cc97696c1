"""Blob upload over HTTP: verified against the digest, nothing half-written on bad input."""

from __future__ import annotations

import hashlib
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

DATA = b"corral blob test data\n" * 1000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def blob_files(server) -> list[str]:
    root = server.settings.models / "blobs"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_upload_creates_then_reports_existing(http: httpx.Client, server) -> None:
    assert http.head(f"/api/blobs/{DIGEST}").status_code == 404
    assert http.post(f"/api/blobs/{DIGEST}", content=DATA).status_code == 201
    assert http.head(f"/api/blobs/{DIGEST}").status_code == 200
    assert http.head(f"/api/blobs/{DIGEST.replace(':', '-')}").status_code == 200
    assert http.post(f"/api/blobs/{DIGEST}", content=DATA).status_code == 200
    stored = server.settings.models / "blobs" / DIGEST.replace(":", "-")
    assert stored.read_bytes() == DATA


def test_upload_with_wrong_digest_is_rejected_and_leaves_nothing(http: httpx.Client, server) -> None:
    wrong = "sha256:" + "a" * 64
    response = http.post(f"/api/blobs/{wrong}", content=DATA)
    assert response.status_code == 400
    assert response.json() == {"error": f'digest mismatch, expected "{wrong}", got "{DIGEST}"'}
    assert blob_files(server) == []


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:" + "a" * 64, "sha256:" + "g" * 64, "x"])
def test_invalid_digest_format(http: httpx.Client, digest: str) -> None:
    assert http.post(f"/api/blobs/{digest}", content=DATA).json() == {"error": "invalid digest format"}
    assert http.head(f"/api/blobs/{digest}").status_code == 400


def test_truncated_upload_leaves_nothing(server) -> None:
    """A client that announces more bytes than it sends and hangs up must not leave a blob or temp file."""
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        head = (
            f"POST /api/blobs/{DIGEST} HTTP/1.1\r\nHost: {url.hostname}\r\n"
            f"Content-Length: {len(DATA)}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        sock.sendall(head.encode() + DATA[: len(DATA) // 2])
        assert wait_until(lambda: any(name.startswith(".tmp-") for name in blob_files(server))), "upload never began"
    # The server notices the disconnect asynchronously: wait (generously) for the handler to unwind.
    assert wait_until(lambda: blob_files(server) == [])
    with httpx.Client(base_url=server.url) as http:
        assert http.head(f"/api/blobs/{DIGEST}").status_code == 404


def wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())
