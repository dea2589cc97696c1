"""The parts of a blob download and their saved state, next to the blobs (Ollama's names)::

    blobs/sha256-<hex>-partial        the blob's bytes, written in place at their offsets (sparse until done)
    blobs/sha256-<hex>-partial-<n>    JSON state of part n: {"offset", "size", "completed"}

A part's state is saved after the bytes it counts were written, so a pull that dies resumes each part where
its state says. ``PartStates`` reads, writes and removes those files; it does not lock them (``download``
holds an exclusive ``flock`` on the partial file while it uses them).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

MIN_PART = 16 << 20
MAX_PART = 1000 << 20


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


class PartStates:
    """The ``<partial>-<n>`` state files of one partial blob file."""

    def __init__(self, partial: Path) -> None:
        self.partial = partial
        self._saving = threading.Lock()  # receivers and the flusher save from their own threads

    def path(self, index: int) -> Path:
        return self.partial.with_name(f"{self.partial.name}-{index}")

    def load(self, size: int) -> list[Part] | None:
        """The saved parts, when they are readable and cover exactly ``size`` bytes in order; else None."""
        parts: list[Part] = []
        index = 0
        while (path := self.path(index)).is_file():
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
        return parts if parts and expected == size else None

    def save(self, part: Part, completed: int | None = None) -> None:
        """Replace the part's state file atomically (a crash leaves the old state or the new one), saying
        ``completed`` bytes (default: ``part.completed``) are in place."""
        path = self.path(part.index)
        tmp = path.with_name(path.name + ".tmp")
        done = part.completed if completed is None else completed
        state = json.dumps({"offset": part.offset, "size": part.size, "completed": done})
        with self._saving:
            tmp.write_text(state)
            os.replace(tmp, path)

    def remove(self) -> None:
        for path in self.partial.parent.glob(f"{self.partial.name}-*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
