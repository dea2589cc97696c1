"""Blob uploads: skip what the registry has, mount what another repository of it has, upload the rest.

For each blob: ``HEAD`` (200: nothing to send). Otherwise, when another repository on the same registry is
known to hold the blob (the store has a model pulled from there), ``POST .../blobs/uploads/?mount=&from=``
first: a 201 means the registry linked it without a byte sent; a 202 opens an ordinary upload session, which
is then used. Blobs up to ``CHUNKED_ABOVE`` go in one ``PUT``; larger ones as ``PATCH`` chunks in order
(``Content-Range: a-b``; the distribution API takes chunks of one session sequentially, so unlike Ollama's
upload to its own registry they are not sent in parallel) and a closing ``PUT ?digest=``. The registry
checks the digest itself; a different ``Docker-Content-Digest`` in its answer is an error.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from pathlib import Path

from server.registry.client import RegistryClient
from server.store.blobs import BlobStore, Digest

CHUNKED_ABOVE = 64 << 20
CHUNK = 32 << 20
READ_CHUNK = 1 << 20


class Outcome(enum.Enum):
    EXISTS = "exists"
    MOUNTED = "mounted"
    UPLOADED = "uploaded"


class FileSlice:
    """``length`` bytes of a file from ``offset``, as a re-iterable body: httpx can send it again after an
    authentication challenge, and every pass reports its progress from the start of the slice."""

    def __init__(self, path: Path, offset: int, length: int, report: Callable[[int], None]) -> None:
        self.path = path
        self.offset = offset
        self.length = length
        self.report = report

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        with self.path.open("rb") as reader:
            reader.seek(self.offset)
            while sent < self.length:
                chunk = reader.read(min(READ_CHUNK, self.length - sent))
                if not chunk:
                    raise OSError(f"{self.path} is shorter than expected")
                sent += len(chunk)
                self.report(self.offset + sent)
                yield chunk


def upload_blob(
    client: RegistryClient,
    blobs: BlobStore,
    digest: Digest,
    report: Callable[[int], None],
    *,
    mount_from: list[str],
) -> Outcome:
    """Make the registry hold ``digest`` from the store; ``report`` gets the bytes sent so far."""
    path = blobs.path(digest)
    size = blobs.size(digest)
    if client.blob_exists(digest):
        report(size)
        return Outcome.EXISTS
    location = None
    for repository in mount_from:
        mounted, location = client.start_upload(mount=(digest, repository))
        if mounted:
            report(size)
            return Outcome.MOUNTED
        break  # the 202 opened an upload session: use it
    if location is None:
        _, location = client.start_upload()
    if size <= CHUNKED_ABOVE:
        client.finish_upload(location, digest, FileSlice(path, 0, size, report), size)
        return Outcome.UPLOADED
    for offset in range(0, size, CHUNK):
        length = min(CHUNK, size - offset)
        location = client.patch_upload(location, FileSlice(path, offset, length, report), offset, length)
    client.finish_upload(location, digest, b"", 0)
    return Outcome.UPLOADED
