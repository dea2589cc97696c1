"""Content-addressed blobs: ``blobs/sha256-<hex>``, written atomically and verified against their digest.

Every write goes to a temporary file in the blobs directory (``.tmp-*``), is hashed while it is copied,
fsynced, checked against the expected digest when one is given, and only then renamed into place. A crash at
any point leaves at most a temp file, which ``prune_temp`` removes at start; a reader never sees a blob whose
bytes do not match its name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from server.errors import DigestMismatch, InvalidDigest

CHUNK = 1 << 20
TEMP_PREFIX = ".tmp-"
_DIGEST = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")
_BLOB_FILE = re.compile(r"sha256-[0-9a-f]{64}")

Progress = Callable[[int], None]


@dataclass(frozen=True, order=True)
class Digest:
    """A sha256 digest; ``str()`` is ``sha256:<hex>``, ``filename`` is ``sha256-<hex>``."""

    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Accept ``sha256:<hex>`` or ``sha256-<hex>`` (any case); else ``InvalidDigest``."""
        match = _DIGEST.fullmatch(text)
        if match is None:
            raise InvalidDigest()
        return cls(match.group(1).lower())

    @classmethod
    def from_bytes(cls, data: bytes) -> Digest:
        return cls(hashlib.sha256(data).hexdigest())

    @property
    def filename(self) -> str:
        return f"sha256-{self.hex}"

    @property
    def short(self) -> str:
        """The first 12 hex digits, as Ollama's progress lines and ``list`` show them."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"sha256:{self.hex}"


@dataclass(frozen=True)
class WrittenBlob:
    digest: Digest
    size: int
    created: bool


class BlobStore:
    """The ``blobs/`` directory of a model store."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: Digest) -> Path:
        return self.root / digest.filename

    def exists(self, digest: Digest) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: Digest) -> int:
        return self.path(digest).stat().st_size

    def read_bytes(self, digest: Digest) -> bytes:
        return self.path(digest).read_bytes()

    def write_bytes(self, data: bytes) -> WrittenBlob:
        """Store ``data`` under its own digest (no-op if already present)."""
        digest = Digest.from_bytes(data)
        if self.exists(digest):
            return WrittenBlob(digest, len(data), created=False)
        with self._temp() as (tmp, handle):
            handle.write(data)
            return self._commit(tmp, handle, digest, digest, len(data))

    def import_file(self, source: Path, progress: Progress | None = None) -> WrittenBlob:
        """Copy a file into the store, hashing while copying; the file is never read into memory whole."""
        with source.open("rb") as reader:
            return self.write_stream(_chunks(reader, progress))

    def write_stream(self, chunks: Iterator[bytes], expected: Digest | None = None) -> WrittenBlob:
        """Store a stream of chunks. With ``expected``, bytes that hash differently raise ``DigestMismatch``
        and leave nothing behind."""
        if expected is not None and self.exists(expected):
            for _ in chunks:
                pass
            return WrittenBlob(expected, self.size(expected), created=False)
        hasher = hashlib.sha256()
        size = 0
        with self._temp() as (tmp, handle):
            for chunk in chunks:
                hasher.update(chunk)
                handle.write(chunk)
                size += len(chunk)
            return self._commit(tmp, handle, Digest(hasher.hexdigest()), expected, size)

    async def write_async_stream(self, chunks: AsyncIterable[bytes], expected: Digest) -> WrittenBlob:
        """``write_stream`` for an async body (an HTTP upload). Blocking writes are short per chunk."""
        hasher = hashlib.sha256()
        size = 0
        with self._temp() as (tmp, handle):
            async for chunk in chunks:
                hasher.update(chunk)
                handle.write(chunk)
                size += len(chunk)
            return self._commit(tmp, handle, Digest(hasher.hexdigest()), expected, size)

    def verify(self, digest: Digest) -> bool:
        """Re-hash a stored blob and compare with its name."""
        hasher = hashlib.sha256()
        with self.path(digest).open("rb") as reader:
            for chunk in _chunks(reader, None):
                hasher.update(chunk)
        return hasher.hexdigest() == digest.hex

    def delete(self, digest: Digest) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def all(self) -> list[Digest]:
        """Every well-named blob in the store."""
        if not self.root.is_dir():
            return []
        return [Digest(p.name[7:]) for p in self.root.iterdir() if _BLOB_FILE.fullmatch(p.name)]

    def touch(self, digest: Digest) -> None:
        os.utime(self.path(digest))

    def prune_temp(self) -> list[Path]:
        """Remove leftover temp files and anything else that is not a blob (e.g. an interrupted write).

        Ollama's ``sha256:<hex>`` spelling is renamed to ``sha256-<hex>`` instead of removed. Download state
        (``-partial``) is left alone, and so is a temp file whose writer is still alive (it holds a lock on it).
        """
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        for entry in self.root.iterdir():
            name = entry.name
            if _BLOB_FILE.fullmatch(name) or "-partial" in name or not entry.is_file():
                continue
            legacy = _DIGEST.fullmatch(name)
            if legacy and name.startswith("sha256:"):
                entry.rename(self.root / f"sha256-{legacy.group(1).lower()}")
                continue
            if remove_if_unlocked(entry):
                removed.append(entry)
        return removed

    @contextlib.contextmanager
    def _temp(self) -> Iterator[tuple[Path, BinaryIO]]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = locked_temp(self.root)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield tmp, handle
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _commit(self, tmp: Path, handle: BinaryIO, got: Digest, expected: Digest | None, size: int) -> WrittenBlob:
        if expected is not None and got != expected:
            raise DigestMismatch(str(expected), str(got))
        handle.flush()
        os.fsync(handle.fileno())
        target = self.path(got)
        if target.exists():
            return WrittenBlob(got, size, created=False)
        os.chmod(tmp, 0o644)
        self.publish(tmp, got)
        return WrittenBlob(got, size, created=True)

    def publish(self, tmp: Path, digest: Digest) -> None:
        """Rename a complete, verified file into the store under ``digest``; the rename is made durable (the
        directory is synced) before this returns."""
        os.replace(tmp, self.path(digest))
        _fsync_dir(self.root)


def locked_temp(directory: Path) -> tuple[int, Path]:
    """Create a ``.tmp-*`` file in ``directory`` and hold an exclusive flock on it.

    The lock marks the temp file as live: ``remove_if_unlocked`` skips locked files, so a start-up prune in
    another process never removes a write in progress, while a crashed writer's file (lock gone) is removed.
    A prune can still remove the file in the instant between its creation and the lock; that is detected
    (the name no longer leads to the locked file) and a new file is made.
    """
    while True:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(name).st_ino == os.fstat(fd).st_ino:
                return fd, Path(name)
        except FileNotFoundError:
            pass
        os.close(fd)


def remove_if_unlocked(path: Path) -> bool:
    """Delete ``path`` unless another open file holds an flock on it (a write in progress)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            return True
        return False
    finally:
        os.close(fd)


def _chunks(reader: BinaryIO, progress: Progress | None) -> Iterator[bytes]:
    done = 0
    while chunk := reader.read(CHUNK):
        done += len(chunk)
        if progress is not None:
            progress(done)
        yield chunk


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
