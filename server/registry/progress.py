"""Progress events of a pull or push, in the shape of Ollama's progress lines.

``Progress`` is what ``/api/pull`` and ``/api/push`` stream (``status`` plus, for a layer, ``digest``,
``total`` and ``completed``). ``LayerProgress`` turns the byte counts that transfer threads report into
events at most every ``interval`` seconds, plus the last one, so a fast loopback pull does not flood the
stream while a slow one still moves.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from server.store.blobs import Digest

PROGRESS_INTERVAL = 0.1


@dataclass(frozen=True)
class Progress:
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


Report = Callable[[Progress], None]


class LayerProgress:
    """Thread-safe, rate-limited ``<verb> <12 hex>`` events for one blob; ``completed`` is left out while
    it is 0, as Ollama's ``omitempty`` does."""

    def __init__(
        self, report: Report, verb: str, digest: Digest, total: int, *, interval: float = PROGRESS_INTERVAL
    ) -> None:
        self._report = report
        self._status = f"{verb} {digest.short}"
        self._digest = str(digest)
        self._total = total
        self._interval = interval
        self._lock = threading.Lock()
        self._last_time = -math.inf  # the first event always goes out
        self._last_value = -1

    def __call__(self, completed: int) -> None:
        with self._lock:
            now = time.monotonic()
            final = completed >= self._total
            if completed == self._last_value or (not final and now - self._last_time < self._interval):
                return
            self._last_time = now
            self._last_value = completed
            self._report(Progress(self._status, self._digest, self._total, completed or None))

    def finish(self) -> None:
        """Report the blob as complete (a cached blob gets exactly this one event)."""
        self(self._total)
