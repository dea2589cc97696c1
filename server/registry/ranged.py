"""The data path of a download: one ranged GET, its body put in the blob's file with as few copies as possible.

Everything else in the registry client goes through httpx (auth, redirects, errors). The bytes of a large
blob do not: httpx hands out a new ``bytes`` object per 64 KiB socket read, through h11's framing. Here the
body goes one of two ways, both handing the sink the bytes in order:

* over plain HTTP on Linux (a registry or mirror inside the cluster, the loopback registry of the tests), the
  kernel moves it: ``splice`` from the socket into a pipe and from the pipe into the file at the part's
  offset. The bytes never enter Python: one copy (into the page cache) instead of curl's two (into curl's
  buffer, then into the page cache), and the sink is told how many bytes landed (``Sink.spliced``); the
  hasher reads them back from the page cache (:mod:`server.registry.ordered_hash`).
* otherwise (TLS, a chunked body, another OS, or the sink has no file), ``http.client``'s ``readinto`` fills
  1 MiB buffers the sink supplies and hands them back to be written and hashed (``Sink.received``).

On a loopback registry the machine's CPUs are the limit: the registry sends, the receiver receives and
the hasher hashes (sha256 takes about 0.17 s for the 253 MB of gemma3:270m, more than receiving them), where
curl only receives. Splicing takes the receiver's copy through user space out of that sum; see
``perf/bench_pull.py`` and the README for the figures.

The URL, headers and TLS context come from ``RegistryClient.locate_blob``, so auth and redirects were already
settled by httpx; a redirect here anyway (a registry that redirects every request) is followed, dropping
``Authorization`` when it leaves the origin.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import select
import urllib.parse
from typing import Protocol

from server.registry.client import BlobLocation
from server.registry.errors import (
    LocationExpired,
    RegistryError,
    RegistryNotFound,
    RetryableStatus,
    TransportFailure,
)

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
PIPE_SIZE = 1 << 20  # the most an unprivileged process may ask for (/proc/sys/fs/pipe-max-size)
SPLICE_REPORT = 1 << 20  # bytes between the sink's ``spliced`` calls: each takes locks and may save state
HEAD_READ = 1 << 20  # more than http.client's read buffer (8 KiB; 128 KiB from Python 3.14), so one read1 empties it


class Sink(Protocol):
    """Where ``read_range`` puts a range's bytes, in order, from the range's first byte on."""

    @property
    def file(self) -> int | None:
        """The file descriptor the range belongs in, at the range's own offsets, for the kernel to write into
        (``spliced``); None to have every byte handed over in a buffer (``received``)."""
        ...

    def take(self) -> memoryview:
        """An empty buffer to read into (any size; a piece fills at most all of it)."""
        ...

    def give(self, piece: memoryview) -> None:
        """Take back a buffer from ``take`` that was not handed over (a read failed)."""
        ...

    def received(self, piece: memoryview) -> None:
        """The next bytes, read into (part of) a buffer from ``take``; the sink writes them and owns the buffer."""
        ...

    def spliced(self, count: int) -> None:
        """The next ``count`` bytes are in ``file`` already, written by the kernel at their offsets."""
        ...


def read_range(location: BlobLocation, start: int, end: int, sink: Sink, *, timeout: float) -> None:
    """GET bytes ``start..end`` (inclusive) of the blob at ``location`` and hand them to ``sink`` in order.

    Raises ``TransportFailure`` for network trouble (refused, reset, timed out, a short body),
    ``RetryableStatus`` for 5xx/429 and ``LocationExpired`` for 401/403: all worth retrying from where the
    sink got to (the last after locating the blob again). Other statuses raise ``RegistryNotFound`` or
    ``RegistryError``; the file's own errors (a full disk) propagate as ``OSError``.
    """
    url, headers = location.url, {**location.headers, "Range": f"bytes={start}-{end}"}
    for _ in range(MAX_REDIRECTS + 1):
        connection = _connect(url, timeout, location)
        try:
            response = _get(connection, url, headers)
            if response.status in _REDIRECTS:
                target = urllib.parse.urljoin(url, response.getheader("Location") or "")
                if _origin(target) != _origin(url):
                    headers.pop("Authorization", None)
                url = target
                continue
            _check(response, url, start, end)
            if sink.file is not None and _spliceable(connection, response):
                _splice(response, connection, start, end - start + 1, sink, sink.file, url, timeout)
            else:
                _drain(response, end - start + 1, sink, url)
            return
        finally:
            connection.close()
    raise RegistryError(f"{location.url}: more than {MAX_REDIRECTS} redirects")


def _connect(url: str, timeout: float, location: BlobLocation) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout, context=location.tls())
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)


def _get(connection: http.client.HTTPConnection, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers=headers)
        return connection.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        raise TransportFailure(f'GET "{url}": {exc or type(exc).__name__}') from exc


def _check(response: http.client.HTTPResponse, url: str, start: int, end: int) -> None:
    status = response.status
    if status == 206 or (status == 200 and start == 0 and response.length == end + 1):
        return
    body = _error_body(response)
    if status == 200:
        raise RegistryError(f"{url}: the registry ignored the Range header")
    if status == 404:
        raise RegistryNotFound()
    if status in (401, 403):
        raise LocationExpired(f"{status}: {body}" if body else str(status))
    message = f"{status}: {body}" if body else str(status)
    if status >= 500 or status == 429:
        raise RetryableStatus(message)
    raise RegistryError(message)


def _error_body(response: http.client.HTTPResponse) -> str:
    try:
        return response.read(4096).decode("utf-8", errors="replace").strip()
    except (OSError, http.client.HTTPException):
        return ""


def _drain(response: http.client.HTTPResponse, expected: int, sink: Sink, url: str) -> int:
    """Read ``expected`` body bytes into the sink's buffers; returns the count (always ``expected``)."""
    received = 0
    while received < expected:
        free = sink.take()
        try:
            count = response.readinto(free[: expected - received])
        except (OSError, http.client.HTTPException) as exc:
            sink.give(free)
            raise TransportFailure(f'GET "{url}": {exc or type(exc).__name__}') from exc
        if not count:
            sink.give(free)
            raise TransportFailure(f'GET "{url}": the connection closed after {received} of {expected} bytes')
        sink.received(free[:count])
        received += count
    return received


def _spliceable(connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> bool:
    """Whether the body can go from the socket to the file in the kernel: plain TCP, a plain body, Linux."""
    plain = not isinstance(connection, http.client.HTTPSConnection) and not response.chunked
    return plain and connection.sock is not None and hasattr(os, "splice")


def _splice(
    response: http.client.HTTPResponse,
    connection: http.client.HTTPConnection,
    start: int,
    expected: int,
    sink: Sink,
    file: int,
    url: str,
    timeout: float,
) -> None:
    """Move ``expected`` body bytes from the socket into ``file`` at ``start`` on, through a pipe, in the kernel.

    ``http.client`` has already read the head of the body into its own buffer along with the headers: one
    ``read1`` of at least that buffer's size takes all of it (and no more), and those bytes go the buffered
    way. The socket is non-blocking (it has a timeout), so an empty one is polled for up to ``timeout``
    seconds. The sink hears of the bytes every ``SPLICE_REPORT`` bytes and at the end.
    """
    done = _head(response, sink, url)
    if done == expected:
        return
    sock = connection.sock
    assert sock is not None
    read_end, write_end = os.pipe()
    try:
        with contextlib.suppress(OSError):  # a smaller pipe (the default 64 KiB) only means more rounds
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        unreported = 0
        try:
            while done < expected:
                moved = _from_socket(sock.fileno(), write_end, min(PIPE_SIZE, expected - done), url, timeout)
                if not moved:
                    raise TransportFailure(f'GET "{url}": the connection closed after {done} of {expected} bytes')
                _pipe_to_file(read_end, file, moved, start + done)
                done += moved
                unreported += moved
                if unreported >= SPLICE_REPORT or done == expected:
                    count, unreported = unreported, 0
                    sink.spliced(count)
        finally:
            if unreported:  # the bytes that landed count, also when the body broke off
                sink.spliced(unreported)
    finally:
        os.close(read_end)
        os.close(write_end)


def _from_socket(source: int, pipe: int, count: int, url: str, timeout: float) -> int:
    """Splice up to ``count`` bytes from the (non-blocking) socket into the pipe, waiting up to ``timeout``
    seconds for some; 0 at the end of the stream."""
    while True:
        try:
            return os.splice(source, pipe, count)
        except BlockingIOError:
            poller = select.poll()
            poller.register(source, select.POLLIN)
            if not poller.poll(timeout * 1000):
                raise TransportFailure(f'GET "{url}": no data for {timeout:g} s') from None
        except OSError as exc:
            raise TransportFailure(f'GET "{url}": {exc}') from exc


def _head(response: http.client.HTTPResponse, sink: Sink, url: str) -> int:
    """Hand the sink what ``http.client`` buffered of the body; returns how many bytes that was."""
    try:
        data = response.read1(HEAD_READ)  # capped at the body's length by http.client
    except (OSError, http.client.HTTPException) as exc:
        raise TransportFailure(f'GET "{url}": {exc or type(exc).__name__}') from exc
    if not data:
        raise TransportFailure(f'GET "{url}": the connection closed before the body')
    done = 0
    while done < len(data):
        free = sink.take()
        count = min(len(free), len(data) - done)
        free[:count] = data[done : done + count]
        sink.received(free[:count])
        done += count
    return done


def _pipe_to_file(pipe: int, file: int, count: int, offset: int) -> None:
    """Empty ``count`` bytes from ``pipe`` into ``file`` at ``offset`` (a page-cache copy, in the kernel)."""
    while count:
        written = os.splice(pipe, file, count, offset_dst=offset)
        if written <= 0:
            raise OSError(f"splice wrote nothing at byte {offset}")
        count -= written
        offset += written


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc.lower()
