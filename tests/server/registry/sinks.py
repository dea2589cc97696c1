"""``ranged.Sink``s for tests: one that keeps the bytes in memory, one that writes them into a file."""

from __future__ import annotations

import os


class MemorySink:
    """Every byte handed over in a buffer (no file to splice into); ``data`` holds them in order."""

    file: int | None = None

    def __init__(self) -> None:
        self.data = bytearray()

    def take(self) -> memoryview:
        return memoryview(bytearray(64 << 10))

    def give(self, piece: memoryview) -> None:
        pass

    def received(self, piece: memoryview) -> None:
        self.data += piece

    def spliced(self, count: int) -> None:
        raise AssertionError("a sink without a file was told of spliced bytes")


class FileSink:
    """The bytes of a range starting at ``offset`` go into ``fd`` at their offsets: written here when handed
    over in a buffer, by the kernel when spliced. Counts what arrived each way."""

    def __init__(self, fd: int, offset: int) -> None:
        self.file: int | None = fd
        self.position = offset
        self.received_bytes = 0
        self.spliced_bytes = 0

    def take(self) -> memoryview:
        return memoryview(bytearray(1 << 20))

    def give(self, piece: memoryview) -> None:
        pass

    def received(self, piece: memoryview) -> None:
        assert self.file is not None
        os.pwrite(self.file, piece, self.position)
        self.position += len(piece)
        self.received_bytes += len(piece)

    def spliced(self, count: int) -> None:
        self.position += count
        self.spliced_bytes += count
