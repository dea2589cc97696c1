"""The sha256 of a blob whose parts are written concurrently, computed in order on a thread of its own.

On a loopback registry sha256 is the costliest stage of a pull (OpenSSL's sha256 runs at about 1.5 GB/s on
one core of the development machine and takes more CPU than receiving and writing the same bytes), so the
hash must neither wait for the download nor make it wait, and must not read the bytes twice:

* Receivers write each piece to the file at its offset and call ``OrderedHasher.wrote``. A piece of the part
  where the hash stands (the frontier) is handed over from memory: the hasher keeps the receiver's buffer,
  hashes it and gives it back to the receiver's ``BufferPool``. Bytes that arrive in order are thus hashed
  once, from the buffer they were received into, while still in the CPU cache.
* What arrived ahead of the frontier (a later part's prefix, the bytes of a resumed file), and what the
  kernel spliced from the socket into the file without passing through Python (``landed``), is read back
  from the file (the page cache) into the hasher's own buffer once the frontier gets there.
* ``hashlib`` releases the GIL while it hashes a large buffer, so the hasher runs on another core beside the
  receivers. A receiver whose pool is empty waits for the hasher: the frontier part can run at most its
  pool's size ahead of the hash, which bounds the memory held.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable, Sequence

from server.registry.errors import RegistryError
from server.registry.parts import Part

READ_BACK = 1 << 20  # read back and hashed while still in the CPU's cache: 4 MiB ran ~8% slower
WAIT = 0.2


class BufferPool:
    """Up to ``count`` reusable buffers of ``size`` bytes for one receiver, made as they are first needed;
    ``check`` runs while ``take`` waits for one and may raise (a canceled or failed transfer)."""

    def __init__(self, count: int, size: int, check: Callable[[], None]) -> None:
        self._check = check
        self._size = size
        self._unmade = count
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()

    def take(self) -> memoryview:
        """A free buffer; a new one while fewer than ``count`` exist, else one the hasher gives back."""
        try:
            return memoryview(self._free.get_nowait())
        except queue.Empty:
            pass
        if self._unmade > 0:
            self._unmade -= 1
            return memoryview(bytearray(self._size))
        while True:
            try:
                return memoryview(self._free.get(timeout=WAIT))
            except queue.Empty:
                self._check()

    def give(self, piece: memoryview) -> None:
        """Return the buffer that ``piece`` (a slice of a buffer from ``take``) lies in."""
        buffer = piece.obj
        assert isinstance(buffer, bytearray)
        self._free.put(buffer)


class OrderedHasher:
    """Hash ``size`` bytes of ``fd`` in order while ``parts`` are written; ``run`` (on its own thread) returns
    the hex digest. ``part.completed`` is advanced only by ``wrote``, under the hasher's lock."""

    def __init__(self, fd: int, parts: Sequence[Part], size: int) -> None:
        self._fd = fd
        self._parts = parts
        self._size = size
        self._cond = threading.Condition()
        self._sha = hashlib.sha256()
        self._claimed = 0  # bytes hashed or being hashed, always in order (guarded by _cond)
        self._pending: dict[int, tuple[memoryview, BufferPool]] = {}  # offset -> piece handed over
        self._failed = False

    def wrote(self, part: Part, piece: memoryview, pool: BufferPool) -> bool:
        """Count ``piece``, just written at ``part.position``, as on disk. Returns True when the hasher keeps
        the buffer (it goes back to ``pool`` once hashed), False when the caller may reuse it at once."""
        with self._cond:
            offset = part.position
            part.completed += len(piece)
            keep = part.offset <= self._claimed < part.end
            if keep:
                self._pending[offset] = (piece, pool)
            self._cond.notify()
            return keep

    def landed(self, part: Part, count: int) -> None:
        """Count ``count`` bytes as written at ``part.position`` without a buffer (the kernel spliced them into
        the file): the hasher reads them back from the page cache when it gets there."""
        with self._cond:
            part.completed += count
            self._cond.notify()

    def fail(self) -> None:
        """The download failed: ``run`` returns an empty string."""
        with self._cond:
            self._failed = True
            self._cond.notify()

    def run(self) -> str:
        """Hash until every byte is hashed and return the hex digest; "" once ``fail`` was called."""
        back = memoryview(bytearray(READ_BACK))
        while True:
            step = self._claim()
            if step is None:
                return "" if self._failed else self._sha.hexdigest()
            if isinstance(step, int):
                offset, count = self._claimed - step, step
                got = os.preadv(self._fd, [back[:count]], offset)
                if got != count:
                    raise RegistryError(f"the partial file is shorter than its parts say (at byte {offset})")
                self._sha.update(back[:count])
            else:
                piece, pool = step
                self._sha.update(piece)
                pool.give(piece)

    def _claim(self) -> tuple[memoryview, BufferPool] | int | None:
        """The next bytes to hash, claimed: a handed-over piece, or a count of bytes to read back from the file
        (ending where the part's written bytes or the next handed-over piece begin); None when done."""
        with self._cond:
            while not self._failed and self._claimed < self._size:
                handed = self._pending.pop(self._claimed, None)
                if handed is not None:
                    self._claimed += len(handed[0])
                    return handed
                limit = min(self._written_from(self._claimed), self._claimed + READ_BACK, *self._pending)
                if limit > self._claimed:
                    count = limit - self._claimed
                    self._claimed = limit
                    return count
                self._cond.wait(WAIT)
            return None

    def _written_from(self, offset: int) -> int:
        """Where the written bytes of the part holding ``offset`` end."""
        for part in self._parts:
            if part.offset <= offset < part.end:
                return part.position
        return offset
