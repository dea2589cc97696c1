"""Blob downloads: parallel ranged requests into a partial file that survives crashes, verified before use.

Layout, next to the blobs (Ollama's names)::

    blobs/sha256-<hex>-partial        the blob's bytes, written in place at their offsets (sparse until done)
    blobs/sha256-<hex>-partial-<n>    JSON state of part n: {"offset", "size", "completed"}

A blob of up to 1 MiB (config, template, params) is fetched in one GET and written atomically. A larger one
is located once (the registry's redirects followed, see ``RegistryClient.locate_blob``) and split into up to
``parallel`` parts, each fetched with ``Range: bytes=a-b`` on its own connection (``ranged``).
A part's state is saved every few MB and when it stops, always after the bytes it counts were written, so a
pull that dies (the process killed, the registry gone, the connection dropped) resumes each part where its
state says. The blob is hashed in order while the parts arrive (the piece that continues the hashed prefix
from memory, what arrived ahead of it read back from the file by a helper thread), so verification costs
no extra pass; only a digest match renames the partial file to ``sha256-<hex>``. A mismatch
deletes the partial file and its state: the next pull starts over. An exclusive ``flock`` on the partial file
makes concurrent pulls of the same blob (threads or processes) wait for one download instead of racing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from server.registry.client import BlobLocation, RegistryClient
from server.registry.errors import (
    BlobDigestMismatch,
    LocationExpired,
    RegistryError,
    RetryableStatus,
    TransferCanceled,
    TransportFailure,
)
from server.registry.ranged import read_range
from server.store.blobs import BlobStore, Digest

log = logging.getLogger(__name__)

SMALL_BLOB = 1 << 20
MIN_PART = 16 << 20
MAX_PART = 1000 << 20
SAVE_EVERY = 8 << 20
HASH_CHUNK = 4 << 20
SYNC_EVERY = 64 << 20
MAX_BACKOFF = 8.0

Report = Callable[[int], None]
T = TypeVar("T")


@dataclass
class Part:
    """Bytes ``offset .. offset+size`` of the blob, of which the first ``completed`` are on disk."""

    index: int
    offset: int
    size: int
    completed: int = 0

    @property
    def position(self) -> int:
        return self.offset + self.completed

    @property
    def end(self) -> int:
        return self.offset + self.size


def plan_parts(total: int, parallel: int) -> list[Part]:
    """Split ``total`` bytes into at most ``parallel`` parts of 16 MB to 1000 MB (one part for small blobs)."""
    if total == 0:
        return [Part(0, 0, 0)]
    size = min(max(math.ceil(total / max(parallel, 1)), MIN_PART), MAX_PART)
    return [Part(i, offset, min(size, total - offset)) for i, offset in enumerate(range(0, total, size))]


def partial_path(blobs: BlobStore, digest: Digest) -> Path:
    return blobs.root / f"{digest.filename}-partial"


class BlobDownload:
    """Download one blob of known digest and size into ``blobs``; ``run`` returns False when the blob was
    already there. ``report`` receives the number of bytes on disk (resumed bytes included), from several
    threads."""

    def __init__(
        self,
        client: RegistryClient,
        blobs: BlobStore,
        digest: Digest,
        size: int,
        report: Report,
    ) -> None:
        self.client = client
        self.blobs = blobs
        self.digest = digest
        self.size = size
        self.report = report
        self.options = client.options
        self.path = partial_path(blobs, digest)
        self._cond = threading.Condition()
        self._hasher = hashlib.sha256()
        self._hashed = 0  # bytes of the blob hashed so far, in order (guarded by _cond)
        self._failed = threading.Event()
        self._parts: list[Part] = []
        self._location: BlobLocation | None = None
        self._locating = threading.Lock()

    def run(self) -> bool:
        if self.blobs.exists(self.digest):
            return False
        if self.size <= SMALL_BLOB:
            self._fetch_small()
            return True
        self.blobs.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self.blobs.exists(self.digest):
                # Another pull finished it while this one waited; the name may now be an empty new file.
                _unlink_if_empty(self.path)
                return False
            self._parts = self._resume(fd)
            self.report(self.completed)
            got = self._fetch(fd)
            if got != self.digest.hex:
                self._discard()
                raise BlobDigestMismatch(str(self.digest), f"sha256:{got}")
            os.fsync(fd)
            os.replace(self.path, self.blobs.path(self.digest))
            _fsync_dir(self.blobs.root)
            self._remove_state()
            return True
        finally:
            os.close(fd)

    def _fetch_small(self) -> None:
        """A blob of at most ``SMALL_BLOB`` bytes: one GET into memory, verified, written atomically."""
        data = self._retrying(lambda: self.client.get_blob(self.digest))
        got = Digest.from_bytes(data)
        if got != self.digest:
            raise BlobDigestMismatch(str(self.digest), str(got))
        self.blobs.write_bytes(data)
        self.report(len(data))

    @property
    def completed(self) -> int:
        return sum(part.completed for part in self._parts)

    # -- state -------------------------------------------------------------------------------------------

    def _state_path(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}-{index}")

    def _resume(self, fd: int) -> list[Part]:
        """Parts from the saved state when it describes this blob's size; otherwise a fresh plan over an
        emptied file."""
        parts = self._load_state()
        if parts is not None and os.fstat(fd).st_size == self.size:
            done = sum(p.completed for p in parts)
            if done:
                log.info("resuming %s at %d of %d bytes", self.digest, done, self.size)
            return parts
        self._remove_state()
        os.ftruncate(fd, 0)
        os.ftruncate(fd, self.size)
        parts = plan_parts(self.size, self.options.parallel)
        for part in parts:
            self._save(part)
        return parts

    def _load_state(self) -> list[Part] | None:
        parts: list[Part] = []
        index = 0
        while (path := self._state_path(index)).is_file():
            try:
                raw = json.loads(path.read_text())
                part = Part(index, int(raw["offset"]), int(raw["size"]), int(raw["completed"]))
            except (OSError, ValueError, KeyError, TypeError):
                return None
            parts.append(part)
            index += 1
        expected = 0
        for part in parts:
            if part.offset != expected or not 0 <= part.completed <= part.size:
                return None
            expected = part.end
        return parts if parts and expected == self.size else None

    def _save(self, part: Part) -> None:
        path = self._state_path(part.index)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"offset": part.offset, "size": part.size, "completed": part.completed}))
        os.replace(tmp, path)

    def _remove_state(self) -> None:
        for path in self.path.parent.glob(f"{self.path.name}-*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _discard(self) -> None:
        self._remove_state()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- transfer ----------------------------------------------------------------------------------------

    def _fetch(self, fd: int) -> str:
        """Fetch every unfinished part in parallel while hashing in order; returns the hex digest."""
        pending = [part for part in self._parts if part.completed < part.size]
        if pending:
            self._location = self._retrying(lambda: self.client.locate_blob(self.digest))
        with ThreadPoolExecutor(max_workers=len(pending) + 1, thread_name_prefix="pull") as pool:
            hashing = pool.submit(self._hash, fd)
            fetching = [pool.submit(self._fetch_part, fd, part) for part in pending]
            errors = [exc for future in fetching if (exc := future.exception()) is not None]
            if errors:
                # The first real failure, not the cancellations it caused in the other parts.
                raise next((e for e in errors if not isinstance(e, TransferCanceled)), errors[0])
            return hashing.result()

    def _fetch_part(self, fd: int, part: Part) -> None:
        try:
            self._retrying(lambda: self._read_part(fd, part), progress=lambda: part.completed)
        except BaseException:
            with self._cond:
                self._failed.set()
                self._cond.notify_all()
            raise
        finally:
            self._save(part)

    def _read_part(self, fd: int, part: Part) -> None:
        unsaved = 0
        location = self._location

        def sink(piece: memoryview) -> None:
            nonlocal unsaved
            os.pwrite(fd, piece, part.position)
            with self._cond:
                if part.position == self._hashed:
                    # This piece continues the hashed prefix: hash it from memory, in order (under the lock).
                    self._hasher.update(piece)
                    self._hashed += len(piece)
                    part.completed += len(piece)
                    if part.completed == part.size:  # the hash moves on to the next part: the helper's turn
                        self._cond.notify_all()
                else:
                    part.completed += len(piece)
                    self._cond.notify_all()
            self.report(self.completed)
            unsaved += len(piece)
            if unsaved >= SAVE_EVERY:
                self._save(part)
                unsaved = 0
            self._check_stop()

        if part.completed >= part.size or location is None:
            return
        try:
            read_range(location, part.position, part.end - 1, sink, timeout=self.options.read_timeout)
        except LocationExpired:
            self._relocate(location)
            raise

    def _relocate(self, stale: BlobLocation) -> None:
        """Locate the blob again (a fresh token or signed URL), once for all parts that found ``stale`` out
        of date. A registry that now refuses raises here, with its own error."""
        with self._locating:
            if self._location is stale:
                self._location = self.client.locate_blob(self.digest)

    def _retrying(self, attempt: Callable[[], T], *, progress: Callable[[], int] = lambda: 0) -> T:
        """Run ``attempt`` until it succeeds, retrying network failures and 5xx answers ``retries`` times
        with doubling back-off; the count starts over whenever ``progress()`` moved."""
        failures = 0
        while True:
            self._check_stop()
            before = progress()
            try:
                return attempt()
            except (TransportFailure, RetryableStatus) as exc:
                failures = 1 if progress() > before else failures + 1
                if failures > self.options.retries:
                    raise
                log.info("%s: %s; retrying", self.digest, exc)
                self._sleep(min(self.options.backoff * 2 ** (failures - 1), MAX_BACKOFF))

    def _hash(self, fd: int) -> str:
        """Finish the hash the parts keep in order. A part's piece that starts where the hash stands is hashed
        from memory as it arrives; this thread reads back from the file what arrived ahead of that (a later
        part's prefix, or a resumed file), 4 MiB per turn of the lock, until the whole blob is hashed. Every
        ``SYNC_EVERY`` bytes it also flushes the file to disk, so the fsync before the rename finds little left
        to write. Returns an empty string when the download fails."""
        synced = 0
        while True:
            with self._cond:
                while (available := self._available()) <= self._hashed < self.size:
                    if self._failed.is_set():
                        return ""
                    self._cond.wait(0.5)
                if self._hashed >= self.size:
                    return self._hasher.hexdigest()
                data = os.pread(fd, min(HASH_CHUNK, available - self._hashed), self._hashed)
                if not data:
                    raise RegistryError(f"{self.path} is shorter than its parts say")
                self._hasher.update(data)
                self._hashed += len(data)
                hashed = self._hashed
            if hashed - synced >= SYNC_EVERY:
                os.fdatasync(fd)
                synced = hashed

    def _available(self) -> int:
        """How far the file is written from where the hash stands (the written prefix of that part)."""
        for part in self._parts:
            if part.offset <= self._hashed < part.end:
                return part.position
        return self._hashed

    def _check_stop(self) -> None:
        if self._failed.is_set():
            raise TransferCanceled()
        cancel = self.options.cancel
        if cancel is not None and cancel.is_set():
            raise TransferCanceled()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._check_stop()
            self._failed.wait(min(left, 0.2))


def _unlink_if_empty(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size == 0:
            path.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
