"""The compute thread's clock: how long each unit of compute takes, and whether one is running too long.

Every unit of work on the compute thread (a decode step of one model, or an embedding batch between steps) is
timed into a fixed-bucket histogram. Writing it costs two clock reads and an increment per step, against
milliseconds of llama.cpp work. Readers on other threads take a :class:`StepStats` snapshot: the server's
``/metrics`` shows the histogram, and ``/healthz`` fails when a step has been running for too long (a wedged
compute thread: a hung kernel, a deadlock inside llama.cpp).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass

# Upper bounds in seconds: a decode step of a small model on a GPU takes about a millisecond, a large prefill
# on a CPU several seconds.
STEP_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class StepStats:
    """A snapshot of a :class:`StepClock`. ``counts[i]`` counts steps with ``bounds[i-1] < seconds <= bounds[i]``;
    the last entry counts those above every bound. ``running_for`` is how long the step in progress has run
    (0 between steps)."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total_seconds: float
    running_for: float

    @property
    def count(self) -> int:
        return sum(self.counts)


class StepClock:
    """Written by the compute thread only (``begin``/``end`` around each step); ``snapshot`` from any thread."""

    def __init__(self) -> None:
        self._counts = [0] * (len(STEP_BUCKETS) + 1)
        self._total = 0.0
        self._started = 0.0

    def begin(self) -> None:
        self._started = time.perf_counter()

    def end(self) -> None:
        elapsed = time.perf_counter() - self._started
        self._started = 0.0
        self._counts[bisect_left(STEP_BUCKETS, elapsed)] += 1
        self._total += elapsed

    def snapshot(self) -> StepStats:
        started = self._started
        running = time.perf_counter() - started if started else 0.0
        return StepStats(STEP_BUCKETS, tuple(self._counts), self._total, max(running, 0.0))
