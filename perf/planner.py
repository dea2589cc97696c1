"""From a finished capacity search to a plan: the knee, the operating point and the replicas a target needs.

Formulas (with headroom ``h``, default 0.25, so a replica runs at most at 75 % of its SLO-limited maximum):

- concurrent users C: replicas = ⌈C / (L·(1 − h))⌉
- requests/s λ: replicas = ⌈λ / (λ_L·(1 − h))⌉ (Little's law check: C ≈ λ·R_L)
- output tokens/s: replicas = ⌈tok/s / (T_L·(1 − h))⌉

where L is max users per replica and λ_L, T_L, R_L are req/s, output tok/s and E2E p50 measured at L; one
replica more is added for rollouts and node loss.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from perf.search import Measurement, SearchResult, median_values
from perf.slo import Slo

# Streams one Locust worker drives before its own CPU skews the timings (reference §4; the stack's load_test
# section enforces the same budget).
STREAMS_PER_WORKER = 100
TARGET_KINDS = {"users": "concurrent users", "rps": "requests/s", "tokens": "output tokens/s"}


class PlanError(ValueError):
    """A target that cannot be read or planned for; the message says what is expected."""


@dataclass(frozen=True)
class Target:
    kind: str
    value: float

    @classmethod
    def parse(cls, text: str) -> Target:
        kind, _, value = text.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1
        if kind.strip() not in TARGET_KINDS or number <= 0:
            raise PlanError(f"cannot read target {text!r}; use users=N, rps=N or tokens=N (a positive number)")
        return cls(kind.strip(), number)


@dataclass(frozen=True)
class Knee:
    """GuideLLM's two-segment fit of output tok/s against users: ``users`` is None when no knee qualifies."""

    users: float | None
    reason: str
    rising_slope: float | None = None
    tail_slope: float | None = None


@dataclass(frozen=True)
class OperatingPoint:
    """Medians over the repeats at max users: output tok/s, req/s and E2E p50 (ms)."""

    users: int
    out_tok_s: float
    req_s: float
    e2e_p50_ms: float

    @classmethod
    def at(cls, result: SearchResult) -> OperatingPoint | None:
        ms = [m for m in result.levels.get(result.max_users, []) if m.verdict != "invalid"]
        if not ms:
            return None
        e2e = [m.summary.e2e.p50 for m in ms if m.summary.e2e.p50 is not None]
        return cls(
            result.max_users,
            statistics.median(m.summary.out_tok_s for m in ms),
            statistics.median(m.summary.req_s for m in ms),
            statistics.median(e2e) if e2e else 0.0,
        )


@dataclass(frozen=True)
class Plan:
    target: Target
    headroom: float
    replicas_for_load: int
    replicas: int
    little_users: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(target: Target, point: OperatingPoint, headroom: float = 0.25) -> Plan:
    """Replicas for ``target`` from the operating point; +1 for rollouts. Raises PlanError on a zero capacity."""
    if not 0 <= headroom < 1:
        raise PlanError(f"headroom must be in [0, 1), got {headroom}")
    per_replica = {"users": point.users, "rps": point.req_s, "tokens": point.out_tok_s}[target.kind] * (1 - headroom)
    if per_replica <= 0:
        raise PlanError("one replica holds no load within the SLOs; relax the SLOs or give the server more room")
    needed = math.ceil(target.value / per_replica - 1e-9)
    little = target.value * point.e2e_p50_ms / 1000 if target.kind == "rps" else None
    return Plan(target, headroom, needed, needed + 1, little)


def knee(users: Sequence[float], tok_s: Sequence[float]) -> Knee:
    """The throughput knee, accepted only when GuideLLM's three conditions hold: ≥ 5 distinct levels, a tail
    slope ≤ 0.25 × the rising slope, a two-segment error ≤ half the one-line error, and throughput at the
    breakpoint ≥ 85 % of the peak."""
    points = sorted({float(u): float(t) for u, t in zip(users, tok_s, strict=True)}.items())
    if len(points) < 5:
        return Knee(None, f"{len(points)} distinct levels; a knee needs at least 5")
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    one_line = _sse(x, y)
    best: tuple[float, int, float, float] | None = None
    for k in range(1, len(x) - 1):  # the breakpoint belongs to both segments
        sse = _sse(x[: k + 1], y[: k + 1]) + _sse(x[k:], y[k:])
        if best is None or sse < best[0]:
            best = (sse, k, float(np.polyfit(x[: k + 1], y[: k + 1], 1)[0]), float(np.polyfit(x[k:], y[k:], 1)[0]))
    assert best is not None
    sse, k, rising, tail = best
    if rising <= 0 or tail > 0.25 * rising:
        return Knee(None, "throughput keeps rising: no knee within the measured levels", rising, tail)
    if one_line > 0 and sse > 0.5 * one_line:
        return Knee(None, "two segments fit no better than one line", rising, tail)
    if y[k] < 0.85 * y.max():
        return Knee(None, "breakpoint throughput below 85% of the peak", rising, tail)
    return Knee(float(x[k]), "two-segment fit", rising, tail)


def _sse(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2:
        return 0.0
    coeffs = np.polyfit(x, y, 1)
    return float(((np.polyval(coeffs, x) - y) ** 2).sum())


def level_table(result: SearchResult) -> list[dict[str, Any]]:
    """One row per measured level (medians over valid repeats), sorted by users."""
    rows = []
    for users in sorted(result.levels):
        ms: list[Measurement] = [m for m in result.levels[users] if m.verdict != "invalid"]
        if not ms:
            continue
        medians = median_values(ms)
        rows.append(
            {
                "users": users,
                "repeats": len(ms),
                "out_tok_s": statistics.median(m.summary.out_tok_s for m in ms),
                "req_s": statistics.median(m.summary.req_s for m in ms),
                "ttft_p50": _median([m.summary.ttft.p50 for m in ms]),
                "ttft_p95": _median([m.summary.ttft.p95 for m in ms]),
                "ttft_p99": _median([m.summary.ttft.p99 for m in ms]),
                "itl_p50": _median([m.summary.itl.p50 for m in ms]),
                "itl_p95": _median([m.summary.itl.p95 for m in ms]),
                "itl_p99": _median([m.summary.itl.p99 for m in ms]),
                "tpot_p50": _median([m.summary.tpot.p50 for m in ms]),
                "error_rate": statistics.median(m.summary.error_rate for m in ms),
                "per_user_tok_s": (1000 / tp) if (tp := _median([m.summary.tpot.p50 for m in ms])) else None,
                "slo_medians": medians,
                "verdict": result.decision(users),
            }
        )
    return rows


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def binding(result: SearchResult) -> tuple[str | None, dict[str, float]]:
    """The SLO closest to its limit at max users (the one that binds) and every SLO's margin there
    (1 − median value / limit; negative means broken)."""
    ms = [m for m in result.levels.get(result.max_users, []) if m.verdict != "invalid"]
    if not ms:
        return None, {}
    medians = median_values(ms)
    margins = {}
    for check in ms[0].checks:
        value = medians[check.slo.name]
        if value is not None:
            margins[check.slo.name] = 1 - value / check.slo.limit if check.slo.limit else (0.0 if value == 0 else -1.0)
    return (min(margins, key=lambda k: margins[k]) if margins else None), margins


def first_fail_reason(result: SearchResult) -> str | None:
    """Which SLO broke at the first failing level (the largest ratio of median value to limit)."""
    if result.first_fail is None or result.first_fail not in result.levels:
        return None
    ms = [m for m in result.levels[result.first_fail] if m.verdict != "invalid"]
    if not ms:
        return None
    medians = median_values(ms)
    ratios = {
        c.slo.name: (medians[c.slo.name] or 0) / c.slo.limit if c.slo.limit else float("inf") for c in ms[0].checks
    }
    return max(ratios, key=lambda k: ratios[k]) if ratios else None


@dataclass(frozen=True)
class ValidationLoad:
    """The in-cluster load test that checks a plan at its target (a stack's ``load_test`` section): the search's
    workload and SLOs at the concurrency the target means."""

    model: str
    users: int
    api: str
    input_words: int
    output_tokens: int
    slos: Sequence[Slo]

    def yaml_lines(self) -> list[str]:
        """The ``corral:load_test`` block, commented out (a validation run is started on purpose)."""
        workers = max(1, math.ceil(self.users / STREAMS_PER_WORKER))
        return [
            "  # then validate the plan from inside the cluster at the target load (README: Capacity planning):",
            "  # corral:load_test:",
            f"  #   model: {self.model}",
            '  #   run_id: "1"',
            f"  #   users: {self.users}",
            f"  #   workers: {workers}",
            "  #   duration: 10m",
            f"  #   api: {self.api}",
            f"  #   input_words: {self.input_words}",
            f"  #   output_tokens: {self.output_tokens}",
            f"  #   slo: {slo_text(self.slos)}",
        ]


def slo_text(slos: Sequence[Slo]) -> str:
    """SLOs in the form ``--slo`` and ``load_test.slo`` read (``ttft_p95=1000ms,errors=1%``)."""
    return ",".join(f"errors={s.limit * 100:g}%" if s.percentile is None else f"{s.name}={s.limit:g}ms" for s in slos)


def target_concurrency(plan: Plan, point: OperatingPoint) -> int:
    """Concurrent streams at the plan's target: the users themselves, λ·R_L for a rate (Little's law), or the
    tokens/s over one stream's share of tok/s at the operating point."""
    if plan.target.kind == "users":
        users = plan.target.value
    elif plan.target.kind == "rps":
        users = plan.little_users or 0.0
    else:
        users = plan.target.value * point.users / point.out_tok_s if point.out_tok_s > 0 else 0.0
    return max(1, math.ceil(users - 1e-9))


def stack_snippet(stack: str, replicas: int, num_parallel: int | None, load: ValidationLoad | None = None) -> str:
    """The ``stacks/Pulumi.<stack>.yaml`` settings this plan asks for: ``replicas`` and ``num_parallel``, and
    the autoscaling bounds as the alternative (the plan as the floor, twice that as the ceiling), commented out
    because a stack sets either a fixed count or an autoscaler, never both; with ``load``, the ``load_test``
    section that validates the plan in the cluster, commented out too."""
    lines = [f"# corral perf capacity: settings for stacks/Pulumi.{stack}.yaml", "config:"]
    lines.append(f"  corral:replicas: {replicas}")
    if num_parallel:
        lines.append(f"  corral:num_parallel: {num_parallel}")
    lines += [
        "  # or, with an autoscaler instead of a fixed count (then leave corral:replicas out):",
        "  # corral:autoscaling:",
        f"  #   min_replicas: {replicas}",
        f"  #   max_replicas: {2 * replicas}",
    ]
    if load is not None:
        lines += load.yaml_lines()
    return "\n".join(lines) + "\n"
