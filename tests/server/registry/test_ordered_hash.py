"""The in-order hash of a file written by concurrent parts: the digest of the whole file whatever order the
pieces land in, buffers of the frontier part hashed from memory and given back, a resumed prefix read back,
and a failed download ending the hash."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server.registry.errors import TransferCanceled
from server.registry.ordered_hash import BufferPool, OrderedHasher
from server.registry.parts import Part, plan_parts

PIECE = 64 << 10


@pytest.fixture
def blob() -> bytes:
    return random.Random(7).randbytes(3 * (1 << 20) + 12345)


@pytest.fixture
def fd(tmp_path: Path, blob: bytes) -> Iterator[int]:
    descriptor = os.open(tmp_path / "partial", os.O_RDWR | os.O_CREAT)
    os.ftruncate(descriptor, len(blob))
    yield descriptor
    os.close(descriptor)


def _never_stop() -> None:
    pass


def _write_part(fd: int, blob: bytes, part: Part, hasher: OrderedHasher, pool: BufferPool, kept: list[int]) -> None:
    """What a receiver does: fill a buffer from the pool, write it at the part's position, report it."""
    while part.completed < part.size:
        buffer = pool.take()
        count = min(len(buffer), part.size - part.completed)
        buffer[:count] = blob[part.position : part.position + count]
        piece = buffer[:count]
        os.pwrite(fd, piece, part.position)
        if hasher.wrote(part, piece, pool):
            kept.append(count)
        else:
            pool.give(piece)


@pytest.mark.parametrize("sizes", [[], [1 << 20, 1 << 20]], ids=["one-part", "three-parts"])
def test_the_digest_is_the_files_whatever_order_the_parts_arrive_in(fd: int, blob: bytes, sizes: list[int]) -> None:
    parts = _laid_out([*sizes, len(blob) - sum(sizes)])
    hasher = OrderedHasher(fd, parts, len(blob))
    kept: list[int] = []
    with ThreadPoolExecutor(len(parts) + 1) as pool:
        digest = pool.submit(hasher.run)
        writers = [
            pool.submit(_write_part, fd, blob, part, hasher, BufferPool(2, PIECE, _never_stop), kept)
            for part in reversed(parts)
        ]
        for writer in writers:
            writer.result()
        assert digest.result(timeout=60) == hashlib.sha256(blob).hexdigest()
    assert [part.completed for part in parts] == [part.size for part in parts]
    # The first part always holds the frontier, so all its pieces were hashed from memory (its writer, with
    # two buffers, would otherwise have waited forever for one back); the others' prefixes were read back.
    assert parts[0].size <= sum(kept) <= len(blob)


def test_a_resumed_prefix_is_read_back_before_the_new_pieces(fd: int, blob: bytes) -> None:
    (part,) = plan_parts(len(blob), 1)
    resumed = 1 << 20
    os.pwrite(fd, blob[:resumed], 0)
    part.completed = resumed
    hasher = OrderedHasher(fd, [part], len(blob))
    kept: list[int] = []
    with ThreadPoolExecutor(2) as pool:
        digest = pool.submit(hasher.run)
        _write_part(fd, blob, part, hasher, BufferPool(1, PIECE, _never_stop), kept)
        assert digest.result(timeout=60) == hashlib.sha256(blob).hexdigest()
    assert sum(kept) == len(blob) - resumed


def test_fail_ends_the_hash_and_a_waiting_receiver_stops(fd: int, blob: bytes) -> None:
    (part,) = plan_parts(len(blob), 1)
    hasher = OrderedHasher(fd, [part], len(blob))
    stopped = threading.Event()

    def check() -> None:
        if stopped.is_set():
            raise TransferCanceled()

    pool = BufferPool(1, PIECE, check)
    with ThreadPoolExecutor(1) as threads:
        digest = threads.submit(hasher.run)
        hasher.fail()
        assert digest.result(timeout=60) == ""
    # The hasher stopped holding nothing; a receiver whose buffers it kept waits until its check raises.
    piece = pool.take()
    os.pwrite(fd, piece, 0)
    hasher.wrote(part, piece, pool)
    stopped.set()
    with pytest.raises(TransferCanceled):
        pool.take()


def test_a_file_shorter_than_its_parts_fails_the_hash(tmp_path: Path) -> None:
    descriptor = os.open(tmp_path / "short", os.O_RDWR | os.O_CREAT)
    try:
        part = Part(0, 0, 1000, completed=1000)
        with pytest.raises(Exception, match="shorter than its parts say"):
            OrderedHasher(descriptor, [part], 1000).run()
    finally:
        os.close(descriptor)


def _laid_out(sizes: list[int]) -> list[Part]:
    """Parts of the given sizes laid end to end from 0."""
    return [Part(index, sum(sizes[:index]), size) for index, size in enumerate(sizes)]
