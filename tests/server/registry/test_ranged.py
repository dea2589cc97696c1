"""Ranged reads against a real HTTP server on loopback: the body spliced by the kernel into the file at the
range's offsets, or handed over in buffers (no file, a chunked body); a body cut short or stalled fails with
a retryable error after the sink was told of every byte that landed."""

from __future__ import annotations

import os
import random
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from server.registry.client import BlobLocation
from server.registry.errors import TransportFailure
from server.registry.ranged import HEAD_READ, read_range

from .sinks import FileSink, MemorySink

BODY = random.Random(7).randbytes(9 << 20)


class _Handler(BaseHTTPRequestHandler):
    """Serves ``BODY``'s ranges; the path picks a behaviour: ``/chunked`` frames the body in chunks, ``/short``
    sends half the range and closes, ``/stall`` sends half and then waits for the server's ``release``."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        assert match, "every request here is ranged"
        data = BODY[int(match[1]) : int(match[2]) + 1]
        self.send_response(206)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for at in range(0, len(data), 300_000):
                piece = data[at : at + 300_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.path == "/short":
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        if self.path == "/stall":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            assert isinstance(self.server, _Server)
            self.server.release.wait(120)
            return
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    release = threading.Event()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.release.set()
    server.shutdown()
    server.server_close()


def _location(url: str) -> BlobLocation:
    def no_tls() -> Any:
        raise AssertionError("plain http needs no TLS context")

    return BlobLocation(url=url, headers={}, tls=no_tls)


@pytest.fixture
def blob_file(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "blob", os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, len(BODY))
    yield fd
    os.close(fd)


def _content(fd: int) -> bytes:
    return os.pread(fd, len(BODY), 0)


def test_a_plain_body_is_spliced_into_the_file_at_the_range_offsets(base_url: str, blob_file: int) -> None:
    start, end = 1000, 1000 + (6 << 20) - 1
    sink = FileSink(blob_file, start)
    read_range(_location(f"{base_url}/blob"), start, end, sink, timeout=30)
    content = _content(blob_file)
    assert content[start : end + 1] == BODY[start : end + 1]
    assert content[:start] == bytes(start) and content[end + 1 :] == bytes(len(BODY) - end - 1)
    # What http.client buffered with the headers came through a buffer; the kernel moved the rest.
    assert 0 < sink.received_bytes <= HEAD_READ and sink.spliced_bytes > 0
    assert sink.received_bytes + sink.spliced_bytes == end - start + 1


def test_without_a_file_every_byte_comes_through_buffers(base_url: str) -> None:
    sink = MemorySink()
    read_range(_location(f"{base_url}/blob"), 5, (3 << 20) + 4, sink, timeout=30)
    assert sink.data == BODY[5 : (3 << 20) + 5]


def test_a_chunked_body_is_read_through_buffers(base_url: str, blob_file: int) -> None:
    sink = FileSink(blob_file, 0)
    read_range(_location(f"{base_url}/chunked"), 0, (2 << 20) - 1, sink, timeout=30)
    assert sink.spliced_bytes == 0 and sink.received_bytes == 2 << 20
    assert _content(blob_file)[: 2 << 20] == BODY[: 2 << 20]


@pytest.mark.parametrize(("path", "error"), [("/short", "closed after"), ("/stall", "no data for 0.5 s")])
def test_a_broken_body_fails_after_counting_what_landed(base_url: str, blob_file: int, path: str, error: str) -> None:
    start, size = 4096, 8 << 20
    sink = FileSink(blob_file, start)
    with pytest.raises(TransportFailure, match=error):
        read_range(_location(f"{base_url}{path}"), start, start + size - 1, sink, timeout=0.5)
    # The sink knows exactly where a retry resumes: every byte it was told of is in the file, and the
    # server's half all landed.
    landed = sink.received_bytes + sink.spliced_bytes
    assert landed == size // 2
    assert _content(blob_file)[start : start + landed] == BODY[start : start + landed]
