"""Percentiles, bootstrap intervals and per-window summaries computed from raw request records.

Published numbers come from raw samples (never from Locust's bucketed histograms). A measurement window
``[start, end]`` (wall-clock seconds) counts a request for latency when it was sent and finished inside the
window, and for throughput when it finished inside the window; requests sent during warm-up are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from perf.records import RequestRecord

METRICS = ("ttft", "itl", "tpot", "e2e")


@dataclass(frozen=True)
class Distribution:
    """Percentiles of one metric in milliseconds; all None when there are no samples."""

    count: int
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> Distribution:
        data = np.asarray(values, dtype=float)
        if data.size == 0:
            return cls(0)
        p50, p90, p95, p99 = (float(v) for v in np.percentile(data, [50, 90, 95, 99]))
        return cls(int(data.size), float(data.mean()), p50, p90, p95, p99)

    def at(self, percentile: int) -> float | None:
        value: float | None = getattr(self, f"p{percentile}")
        return value


@dataclass(frozen=True)
class Summary:
    """One measurement window. ``requests`` counts successes and errors sent and finished in the window;
    ``req_s`` and ``out_tok_s`` count successful requests finished in it."""

    window_s: float
    requests: int
    errors: int
    error_rate: float
    req_s: float
    out_tok_s: float
    output_tokens: int
    ttft: Distribution
    itl: Distribution
    tpot: Distribution
    e2e: Distribution
    errors_by_reason: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metric(self, name: str) -> Distribution:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}")
        distribution: Distribution = getattr(self, name)
        return distribution


def in_window(records: Sequence[RequestRecord], start: float, end: float) -> list[RequestRecord]:
    """Requests sent at or after ``start`` and finished by ``end``: the ones whose latency counts."""
    return [r for r in records if r.t_send >= start and r.t_done <= end]


def window_of(records: Sequence[RequestRecord], warmup_s: float = 0.0) -> tuple[float, float]:
    """The window of a run that kept no timestamps of its own: first send plus warm-up to the last finish."""
    if not records:
        return (0.0, 0.0)
    return (min(r.t_send for r in records) + warmup_s, max(r.t_done for r in records))


def summarise(records: Sequence[RequestRecord], start: float, end: float) -> Summary:
    """The summary of the window ``[start, end]``."""
    window_s = max(end - start, 1e-9)
    measured = in_window(records, start, end)
    finished_ok = [r for r in records if r.ok and start <= r.t_done <= end]
    ok = [r for r in measured if r.ok]
    errors = [r for r in measured if not r.ok]
    reasons: dict[str, int] = {}
    for r in errors:
        reasons[str(r.error)] = reasons.get(str(r.error), 0) + 1
    tokens = sum(r.output_tokens for r in finished_ok)
    return Summary(
        window_s=window_s,
        requests=len(measured),
        errors=len(errors),
        error_rate=len(errors) / len(measured) if measured else 0.0,
        req_s=len(finished_ok) / window_s,
        out_tok_s=tokens / window_s,
        output_tokens=tokens,
        ttft=Distribution.of([r.ttft_ms for r in ok if r.ttft_ms is not None]),
        itl=Distribution.of([g for r in ok for g in r.gaps_ms]),
        tpot=Distribution.of([t for r in ok if (t := r.tpot_ms) is not None]),
        e2e=Distribution.of([r.e2e_ms for r in ok]),
        errors_by_reason=reasons,
    )


def bootstrap_interval(
    records: Sequence[RequestRecord],
    metric: str,
    percentile: float,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """A percentile bootstrap interval of ``metric``'s ``percentile`` over successful requests, resampling
    whole requests (a request's ITL gaps are correlated, so gaps are never resampled one by one). For
    ``errors`` it is the interval of the error rate over all records. None when there are fewer than 2 samples.
    """
    rng = np.random.default_rng(seed)
    alpha = (1 - confidence) / 2
    if metric == "errors":
        flags = np.array([0.0 if r.ok else 1.0 for r in records])
        if flags.size < 2:
            return None
        means = flags[rng.integers(0, flags.size, size=(resamples, flags.size))].mean(axis=1)
        return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))
    groups = _samples_per_request(records, metric)
    if len(groups) < 2:
        return None
    owner = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
    values = np.concatenate([np.asarray(g, dtype=float) for g in groups])
    order = np.argsort(values, kind="stable")
    values, owner = values[order], owner[order]
    estimates = np.empty(resamples)
    for b in range(resamples):
        counts = np.bincount(rng.integers(0, len(groups), size=len(groups)), minlength=len(groups))
        cumulative = np.cumsum(counts[owner])
        estimates[b] = _weighted_percentile(values, cumulative, percentile)
    return float(np.quantile(estimates, alpha)), float(np.quantile(estimates, 1 - alpha))


def _weighted_percentile(values: np.ndarray, cumulative: np.ndarray, percentile: float) -> float:
    rank = percentile / 100 * cumulative[-1]
    index = min(int(np.searchsorted(cumulative, rank, side="left")), values.size - 1)
    return float(values[index])


def _samples_per_request(records: Sequence[RequestRecord], metric: str) -> list[list[float]]:
    pick: dict[str, Callable[[RequestRecord], list[float]]] = {
        "ttft": lambda r: [] if r.ttft_ms is None else [r.ttft_ms],
        "itl": lambda r: list(r.gaps_ms),
        "tpot": lambda r: [] if r.tpot_ms is None else [float(r.tpot_ms)],
        "e2e": lambda r: [r.e2e_ms],
    }
    if metric not in pick:
        raise ValueError(f"unknown metric {metric!r}")
    groups = [pick[metric](r) for r in records if r.ok]
    return [g for g in groups if g]
