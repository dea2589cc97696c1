"""Service-level objectives: parsing ``--slo ttft_p95=1000ms,itl_p95=100ms,errors=1%`` and judging windows.

A latency SLO names a metric (``ttft``, ``itl``, ``tpot``, ``e2e``), a percentile and a limit in ``ms`` or
``s``; ``errors`` takes a rate (``1%`` or ``0.01``). A check is a *confident pass* when the upper end of the
bootstrap interval is within the limit, a *confident fail* when the lower end is beyond it, otherwise
*inconclusive*; with no interval (too few samples) the point estimate decides and the check says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from perf.records import RequestRecord
from perf.stats import METRICS, Summary, bootstrap_interval

DEFAULT_SLOS = "ttft_p95=1000ms,itl_p95=100ms,errors=1%"

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"

_LATENCY = re.compile(r"^(?P<metric>[a-z0-9]+)_p(?P<pct>\d{1,2})=(?P<value>[0-9.]+)\s*(?P<unit>ms|s)?$")
_ERRORS = re.compile(r"^errors=(?P<value>[0-9.]+)\s*(?P<pct>%)?$")


class SloError(ValueError):
    """An SLO string that cannot be parsed; the message says what is expected."""


@dataclass(frozen=True)
class Slo:
    """``metric`` at ``percentile`` must be ≤ ``limit`` (ms); for ``errors`` the rate must be ≤ ``limit``."""

    metric: str
    percentile: int | None
    limit: float

    @property
    def name(self) -> str:
        return "errors" if self.percentile is None else f"{self.metric}_p{self.percentile}"

    @property
    def label(self) -> str:
        if self.percentile is None:
            return f"errors ≤ {self.limit:.2%}"
        return f"{self.metric.upper()} p{self.percentile} ≤ {self.limit:g} ms"

    def value(self, summary: Summary) -> float | None:
        if self.percentile is None:
            return summary.error_rate if summary.requests else None
        return summary.metric(self.metric).at(self.percentile)


@dataclass(frozen=True)
class Check:
    """One SLO judged on one window: ``ratio`` is value / limit (above 1 breaks it); ``confident`` is False
    when no bootstrap interval could be formed and the point estimate decided."""

    slo: Slo
    value: float | None
    interval: tuple[float, float] | None
    verdict: str
    confident: bool

    @property
    def ratio(self) -> float | None:
        if self.value is None:
            return None
        if self.slo.limit == 0:
            return 0.0 if self.value == 0 else float("inf")
        return self.value / self.slo.limit


def parse_slos(text: str) -> list[Slo]:
    """Parse a comma-separated SLO list; raises SloError naming the bad item."""
    slos: list[Slo] = []
    for item in (part.strip().lower() for part in text.split(",")):
        if not item:
            continue
        if m := _ERRORS.match(item):
            value = float(m["value"])
            slos.append(Slo("errors", None, value / 100 if m["pct"] else value))
        elif (m := _LATENCY.match(item)) and m["metric"] in METRICS:
            value = float(m["value"]) * (1000 if m["unit"] == "s" else 1)
            slos.append(Slo(m["metric"], int(m["pct"]), value))
        else:
            raise SloError(
                f"cannot read SLO {item!r}: use METRIC_pNN=VALUE[ms|s] with METRIC one of "
                f"{', '.join(METRICS)} (e.g. ttft_p95=1000ms), or errors=RATE (e.g. errors=1%)"
            )
    if not slos:
        raise SloError("no SLO given; e.g. --slo ttft_p95=1000ms,itl_p95=100ms,errors=1%")
    return slos


def judge(
    slos: Sequence[Slo], summary: Summary, records: Sequence[RequestRecord], *, bootstrap: bool = True, seed: int = 0
) -> list[Check]:
    """Judge every SLO on one window; ``records`` are the window's requests (``stats.in_window``)."""
    checks = []
    for slo in slos:
        value = slo.value(summary)
        if value is None:
            checks.append(Check(slo, None, None, INCONCLUSIVE, False))
            continue
        interval = None
        if bootstrap:
            pct = 0.0 if slo.percentile is None else float(slo.percentile)
            interval = bootstrap_interval(records, slo.metric, pct, seed=seed)
        if interval is None:
            checks.append(Check(slo, value, None, PASS if value <= slo.limit else FAIL, False))
        elif interval[1] <= slo.limit:
            checks.append(Check(slo, value, interval, PASS, True))
        elif interval[0] > slo.limit:
            checks.append(Check(slo, value, interval, FAIL, True))
        else:
            checks.append(Check(slo, value, interval, INCONCLUSIVE, True))
    return checks


def overall(checks: Sequence[Check]) -> str:
    """Fail if any check fails, inconclusive if any is, else pass."""
    verdicts = {c.verdict for c in checks}
    return FAIL if FAIL in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else PASS


def point_verdict(checks: Sequence[Check]) -> str:
    """Pass when every point estimate is within its limit (used where intervals cannot decide)."""
    return PASS if all(c.value is not None and c.value <= c.slo.limit for c in checks) else FAIL


def goodput(slos: Sequence[Slo], records: Sequence[RequestRecord], window_s: float) -> float:
    """Requests/s that succeeded with each per-request metric within its SLO limit: TTFT and E2E against
    their limits, TPOT against the ITL (or TPOT) limit. Percentiles do not apply to one request."""
    limits = {slo.metric: slo.limit for slo in slos if slo.percentile is not None}
    decode = limits.get("tpot", limits.get("itl"))
    good = 0
    for r in records:
        if not r.ok:
            continue
        if "ttft" in limits and (r.ttft_ms is None or r.ttft_ms > limits["ttft"]):
            continue
        if "e2e" in limits and r.e2e_ms > limits["e2e"]:
            continue
        if decode is not None and (tpot := r.tpot_ms) is not None and tpot > decode:
            continue
        good += 1
    return good / window_s if window_s > 0 else 0.0
