"""What metrics cost the decode path: the engine with its compute-step clock and a request record per stream
(what a server with metrics on does per step and per token) against the engine with both off, in one run.

Run by hand (a few minutes on 2 cores)::

    .venv/bin/python perf/bench_metrics.py [--model PATH] [--threads 2] [--tokens 128] [--streams 8] [--rounds 5]

Every request generates ``--tokens`` tokens greedily with end-of-sequence ignored. "metrics on": the compute
thread times every step (``server.engine.clock``) and every token event appends a clock reading to a
``RequestRecord``, as the inference service does; "metrics off": neither. Everything else a server does with
metrics (observing histograms, rendering ``/metrics``) happens after a response or at scrape time, never per
token. The sides alternate for ``--rounds`` rounds; the target is a ratio within 2% of 1.00x. Whole runs on a
shared machine vary by more than that from round to round, so the script also times the two additions alone
(nanoseconds per step and per token) to compare with a decode step's milliseconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf.bench_runner import Side, arguments, side_by_side
from server.engine import ComputeThread, EngineModel, LoadParams
from server.engine.clock import StepClock
from server.telemetry.record import RequestRecord


class OwnCompute:
    """An in-process model with a compute thread of its own, timed or not; closes both."""

    def __init__(self, params: LoadParams, *, timed: bool) -> None:
        self.compute = ComputeThread(timed=timed)
        self.model = EngineModel.load(params, self.compute)

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def close(self) -> None:
        self.model.close()
        self.compute.close()


def loader(*, timed: bool) -> Callable[[LoadParams], OwnCompute]:
    return lambda params: OwnCompute(params, timed=timed)


def unit_costs(n: int = 200_000) -> tuple[float, float]:
    """Nanoseconds per compute step for the clock (``begin`` + ``end``) and per token for the record."""
    clock = StepClock()
    start = time.perf_counter_ns()
    for _ in range(n):
        clock.begin()
        clock.end()
    per_step = (time.perf_counter_ns() - start) / n
    record = RequestRecord()
    start = time.perf_counter_ns()
    for _ in range(n):
        record.token()
    return per_step, (time.perf_counter_ns() - start) / n


def main() -> None:
    args = arguments(__doc__.split("\n")[0])
    record = RequestRecord()
    on = Side("metrics on", loader(timed=True), record.token)
    off = Side("metrics off", loader(timed=False))
    side_by_side(args, on, off)
    # The same cost without the noise of whole runs: what metrics add per step and per token, in isolation.
    per_step, per_token = unit_costs()
    print(f"\nclock per compute step: {per_step:.0f} ns; record per token event: {per_token:.0f} ns")


if __name__ == "__main__":
    main()
