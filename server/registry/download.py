"""Blob downloads: ranged requests into a partial file that survives crashes, verified before use.

A blob of up to 1 MiB (config, template, params) is fetched in one GET and written atomically. A larger one is
located once (the registry's redirects followed, see ``RegistryClient.locate_blob``) and split into up to
``parallel`` parts (``parts``; one when it is served from loopback, see ``RegistryOptions``), each fetched
with ``Range: bytes=a-b`` on its own connection (``ranged``) into buffers of its own and written with
``pwrite`` at its offset in ``blobs/sha256-<hex>-partial`` (or spliced there by the kernel). The parts'
states are saved by the flusher right after each ``fdatasync`` and by each part when it stops, always after
the bytes they count were written, so a pull that dies (the process killed, the registry gone, the
connection dropped; after a sync, even the machine) resumes each part where its state says.

Three kinds of threads run a download: one receiver per unfinished part, the hasher (``ordered_hash``: the
sha256 in order, from the receivers' buffers where it can, so verification costs no extra pass) and a
flusher that calls ``fdatasync`` every ``SYNC_EVERY`` written bytes, so that the disk works while the bytes
arrive and the fsync before the rename finds little left to write, then saves the parts' states (file work
that would otherwise stall a receiver now and then). Only a digest match renames the partial
file to ``sha256-<hex>``; a mismatch deletes the partial file and its state, and the next pull starts
over. An exclusive ``flock`` on the partial file makes concurrent pulls of the same blob (threads or
processes) wait for one download instead of racing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from server.registry.client import DEFAULT_PARALLEL, BlobLocation, RegistryClient
from server.registry.errors import (
    BlobDigestMismatch,
    LocationExpired,
    RetryableStatus,
    TransferCanceled,
    TransportFailure,
)
from server.registry.ordered_hash import BufferPool, OrderedHasher
from server.registry.parts import Part, PartStates, plan_parts
from server.registry.ranged import read_range
from server.store.blobs import BlobStore, Digest

log = logging.getLogger(__name__)

SMALL_BLOB = 1 << 20
SYNC_EVERY = 16 << 20  # the final fsync then waits for ~10 ms of writes, not ~35 (64 MiB) or ~120 (none)
BUFFER = 1 << 20
WRITE = 256 << 10  # bytes per pwrite: see _write_at
BUFFERS = 32  # per receiver: how far the frontier part may run ahead of the hash (32 MiB), to ride out stalls
MAX_BACKOFF = 8.0

Report = Callable[[int], None]
T = TypeVar("T")


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
        self.states = PartStates(self.path)
        self._failed = threading.Event()
        self._parts: list[Part] = []
        self._location: BlobLocation | None = None
        self._locating = threading.Lock()

    def run(self) -> bool:
        if self.blobs.exists(self.digest):
            return False
        if self.size <= SMALL_BLOB:
            self.blobs.write_bytes(self.fetch_small())
            return True
        self.blobs.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self.blobs.exists(self.digest):
                # Another pull finished it while this one waited; the name may now be an empty new file.
                _unlink_if_empty(self.path)
                return False
            self._location = self._retrying(lambda: self.client.locate_blob(self.digest))
            self._parts = self._resume(fd, self._location)
            self.report(self.completed)
            got = self._fetch(fd)
            if got != self.digest.hex:
                self._discard()
                raise BlobDigestMismatch(str(self.digest), f"sha256:{got}")
            os.fsync(fd)
            self.blobs.publish(self.path, self.digest)
            self.states.remove()
            return True
        finally:
            os.close(fd)

    def fetch_small(self) -> bytes:
        """A blob of at most ``SMALL_BLOB`` bytes: one GET into memory, verified (``run`` writes it)."""
        data = self._retrying(lambda: self.client.get_blob(self.digest))
        got = Digest.from_bytes(data)
        if got != self.digest:
            raise BlobDigestMismatch(str(self.digest), str(got))
        self.report(len(data))
        return data

    @property
    def completed(self) -> int:
        return sum(part.completed for part in self._parts)

    def _resume(self, fd: int, location: BlobLocation) -> list[Part]:
        """Parts from the saved state when it describes this blob's size; otherwise a fresh plan over an
        emptied file, in as many parts as ``location`` calls for (see ``RegistryOptions``)."""
        parts = self.states.load(self.size)
        if parts is not None and os.fstat(fd).st_size == self.size:
            done = sum(p.completed for p in parts)
            if done:
                log.info("resuming %s at %d of %d bytes", self.digest, done, self.size)
            return parts
        self.states.remove()
        os.ftruncate(fd, 0)
        os.ftruncate(fd, self.size)
        parallel = self.options.parallel or (1 if location.loopback else DEFAULT_PARALLEL)
        parts = plan_parts(self.size, parallel)
        for part in parts:
            self.states.save(part)
        return parts

    def _discard(self) -> None:
        self.states.remove()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- transfer ----------------------------------------------------------------------------------------

    def _fetch(self, fd: int) -> str:
        """Fetch every unfinished part in parallel while hashing in order; returns the hex digest."""
        pending = [part for part in self._parts if part.completed < part.size]
        hasher = OrderedHasher(fd, self._parts, self.size)
        flusher = Flusher(fd, self.states, pending)
        with ThreadPoolExecutor(max_workers=len(pending) + 2, thread_name_prefix="pull") as pool:
            hashing = pool.submit(self._hash, hasher)
            flushing = pool.submit(flusher.run)
            fetching = [pool.submit(self._fetch_part, fd, part, hasher, flusher) for part in pending]
            errors = [exc for future in fetching if (exc := future.exception()) is not None]
            flusher.stop()
            if errors:
                hasher.fail()
                # The first real failure, not the cancellations it caused in the other parts.
                real = [e for e in errors if not isinstance(e, TransferCanceled)]
                raise real[0] if real else hashing.exception() or errors[0]
            flushing.result()
            return hashing.result()

    def _hash(self, hasher: OrderedHasher) -> str:
        try:
            return hasher.run()
        except BaseException:
            self._failed.set()  # receivers waiting for a buffer the hasher holds must not wait forever
            raise

    def _fetch_part(self, fd: int, part: Part, hasher: OrderedHasher, flusher: Flusher) -> None:
        sink = PartSink(self, fd, part, hasher, flusher)
        try:
            self._retrying(lambda: self._read_part(part, sink), progress=lambda: part.completed)
        except BaseException:
            self._failed.set()
            hasher.fail()
            raise
        finally:
            self.states.save(part)

    def _read_part(self, part: Part, sink: PartSink) -> None:
        location = self._location
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
            self.check_stop()
            before = progress()
            try:
                return attempt()
            except (TransportFailure, RetryableStatus) as exc:
                failures = 1 if progress() > before else failures + 1
                if failures > self.options.retries:
                    raise
                log.info("%s: %s; retrying", self.digest, exc)
                self._sleep(min(self.options.backoff * 2 ** (failures - 1), MAX_BACKOFF))

    def check_stop(self) -> None:
        if self._failed.is_set():
            raise TransferCanceled()
        cancel = self.options.cancel
        if cancel is not None and cancel.is_set():
            raise TransferCanceled()

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.check_stop()
            self._failed.wait(min(left, 0.2))


class PartSink:
    """Where one part's bytes go (see ``ranged.Sink``): written at the part's position (by the kernel when it
    splices them, else here from the buffers of the part's own pool) and counted by the hasher, which keeps
    the buffers of the bytes it hashes from memory; the flusher and the progress report hear of them."""

    def __init__(self, download: BlobDownload, fd: int, part: Part, hasher: OrderedHasher, flusher: Flusher) -> None:
        self._download = download
        self._part = part
        self._hasher = hasher
        self._flusher = flusher
        self._buffers = BufferPool(BUFFERS, BUFFER, download.check_stop)
        self.file: int | None = fd if download.options.zero_copy else None
        self._fd = fd

    def take(self) -> memoryview:
        return self._buffers.take()

    def give(self, piece: memoryview) -> None:
        self._buffers.give(piece)

    def received(self, piece: memoryview) -> None:
        _write_at(self._fd, piece, self._part.position)
        if not self._hasher.wrote(self._part, piece, self._buffers):
            self._buffers.give(piece)
        self._landed(len(piece))

    def spliced(self, count: int) -> None:
        self._hasher.landed(self._part, count)
        self._landed(count)

    def _landed(self, count: int) -> None:
        self._flusher.wrote(count)
        download = self._download
        download.report(download.completed)
        download.check_stop()


class Flusher:
    """``fdatasync`` the file on a thread of its own whenever ``SYNC_EVERY`` more bytes were written, so the
    kernel writes the blob out while the rest arrives (the final fsync then has little left to do), and then
    saves the ``parts``' states as they were when the sync began: what they count is on disk."""

    def __init__(self, fd: int, states: PartStates, parts: list[Part]) -> None:
        self._fd = fd
        self._states = states
        self._parts = parts
        self._cond = threading.Condition()
        self._unsynced = 0
        self._stopped = False

    def wrote(self, count: int) -> None:
        with self._cond:
            self._unsynced += count
            if self._unsynced >= SYNC_EVERY:
                self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def run(self) -> None:
        while True:
            with self._cond:
                while self._unsynced < SYNC_EVERY and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                self._unsynced = 0
            counted = [part.completed for part in self._parts]
            os.fdatasync(self._fd)
            for part, completed in zip(self._parts, counted, strict=True):
                self._states.save(part, completed)


def _write_at(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset``, ``WRITE`` bytes per ``pwrite``. A 1 MiB write lets the kernel put it
    in a page-cache folio as large (Linux 6.18, ext4); on the development VM, filling freshly allocated large
    folios ran 3-10 times slower in some pulls (``copy_folio_from_iter_atomic``, seen with ``perf``), which
    256 KiB writes never did. curl writes 16 KiB at a time."""
    done = 0
    while done < len(data):
        written = os.pwrite(fd, data[done : done + WRITE], offset + done)
        if written <= 0:
            raise OSError(f"pwrite wrote nothing at byte {offset + done}")
        done += written


def _unlink_if_empty(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size == 0:
            path.unlink()
