"""The capacity search: the largest number of concurrent users one replica serves within the SLOs.

It is written against a ``measure(users, repeat)`` callable, so it runs the same on a live server and on
recorded samples (the tests). The method:

1. coarse doubling (1, 2, 4, ...) up to ``max_users`` until a level fails;
2. bisection between the last pass L and the first fail F until F − L = 1;
3. confirmation: L and F are measured ``repeats`` times in all, interleaved (L, F, L, F, ...) so drift spreads
   over both; a level passes when the median of its repeats is within every SLO and no repeat is a confident
   fail (bootstrap interval wholly beyond a limit); an inconclusive measurement is repeated at once;
4. monotonicity: a level below L that failed or above F that passed is measured once more; if the verdict
   still does not fall with users, the answer is the lowest failing level − 1 and the result says so;
5. client health: a measurement where the load generator itself was CPU-bound is invalid (neither pass nor
   fail) and is retried; if it stays invalid the search stops with an error.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from perf.slo import FAIL, INCONCLUSIVE, PASS, Check, Slo
from perf.stats import Summary

INVALID = "invalid"


@dataclass
class Measurement:
    """One measured window at ``users`` concurrent streams."""

    users: int
    repeat: int
    summary: Summary
    checks: list[Check]
    verdict: str
    client_cpu_pct: float = 0.0
    client_ok: bool = True
    goodput: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)


class ClientBound(Exception):
    """The load generator could not keep up; the message says how to give it more room."""


Measure = Callable[[int, int], Measurement]


@dataclass
class SearchResult:
    max_users: int
    first_fail: int | None
    bracketed: bool
    monotonic: bool
    levels: dict[int, list[Measurement]] = field(default_factory=dict)
    order: list[Measurement] = field(default_factory=list)

    def decision(self, users: int) -> str:
        return decide(self.levels.get(users, []))


def median_values(measurements: list[Measurement]) -> dict[str, float | None]:
    """Per SLO name, the median of the values measured across repeats (None if none had data)."""
    names = [c.slo.name for c in measurements[0].checks] if measurements else []
    out: dict[str, float | None] = {}
    for i, name in enumerate(names):
        values = [m.checks[i].value for m in measurements if m.checks[i].value is not None]
        out[name] = statistics.median(v for v in values if v is not None) if values else None
    return out


def decide(measurements: list[Measurement]) -> str:
    """A level's verdict from its valid measurements: fail on any confident fail, else pass when the median of
    every SLO's values is within its limit; ``inconclusive`` when nothing valid was measured."""
    valid = [m for m in measurements if m.verdict != INVALID]
    if not valid:
        return INCONCLUSIVE
    if any(c.verdict == FAIL and c.confident for m in valid for c in m.checks):
        return FAIL
    slos: list[Slo] = [c.slo for c in valid[0].checks]
    medians = median_values(valid)
    return PASS if all((v := medians[s.name]) is not None and v <= s.limit for s in slos) else FAIL


class CapacitySearch:
    """Runs the search; ``on_measurement`` sees every measurement as it lands (progress, files)."""

    def __init__(
        self,
        measure: Measure,
        *,
        max_users: int,
        repeats: int = 3,
        retries: int = 2,
        budget: int = 40,
        on_measurement: Callable[[Measurement], None] | None = None,
    ) -> None:
        self._measure = measure
        self.max_users = max_users
        self.repeats = max(1, repeats)
        self.retries = retries
        self.budget = budget
        self.on_measurement = on_measurement
        self.levels: dict[int, list[Measurement]] = {}
        self.order: list[Measurement] = []

    def measure(self, users: int) -> str:
        """Measure ``users`` once more (again at once if inconclusive, while repeats remain); its verdict."""
        while True:
            self._measure_valid(users)
            measurements = self.levels[users]
            if measurements[-1].verdict != INCONCLUSIVE or len(measurements) >= self.repeats:
                return decide(measurements)

    def _measure_valid(self, users: int) -> None:
        for _attempt in range(self.retries + 1):
            if len(self.order) >= self.budget:
                raise ClientBound(f"measurement budget of {self.budget} spent before the search converged")
            m = self._measure(users, len(self.levels.get(users, [])) + 1)
            self.levels.setdefault(users, []).append(m)
            self.order.append(m)
            if self.on_measurement is not None:
                self.on_measurement(m)
            if m.verdict != INVALID:
                return
        raise ClientBound(
            f"the load generator was CPU-bound at {users} users in {self.retries + 1} tries "
            f"(last: {m.client_cpu_pct:.0f}% CPU); add --workers or run it on another machine"
        )

    def run(self) -> SearchResult:
        last_pass, first_fail = self._coarse()
        if last_pass == 0 or first_fail is None:
            return self._result(last_pass, first_fail, bracketed=first_fail is not None)
        for _round in range(4):
            last_pass, first_fail = self._bisect(last_pass, first_fail)
            if last_pass == 0:
                return self._result(0, first_fail, bracketed=True)
            last_pass, first_fail, stable = self._confirm(last_pass, first_fail)
            if stable:
                break
        return self._monotonic_check(last_pass, first_fail)

    def _coarse(self) -> tuple[int, int | None]:
        users, last_pass = 1, 0
        while True:
            if self.measure(users) != PASS:
                return last_pass, users
            last_pass = users
            if users >= self.max_users:
                return last_pass, None
            users = min(users * 2, self.max_users)

    def _bisect(self, low: int, high: int) -> tuple[int, int]:
        while high - low > 1:
            mid = (low + high) // 2
            verdict = decide(self.levels[mid]) if mid in self.levels else self.measure(mid)
            low, high = (mid, high) if verdict == PASS else (low, mid)
        return low, high

    def _confirm(self, low: int, high: int) -> tuple[int, int, bool]:
        """Bring L and F up to ``repeats`` measurements, interleaved; stable when both verdicts held."""
        while len(self.levels.get(low, [])) < self.repeats or len(self.levels.get(high, [])) < self.repeats:
            for users in (low, high):
                if len(self.levels.get(users, [])) < self.repeats:
                    self._measure_valid(users)
        if decide(self.levels[low]) != PASS:
            below = [u for u, ms in self.levels.items() if u < low and decide(ms) == PASS]
            return (max(below) if below else 0), low, False
        if decide(self.levels[high]) == PASS:
            above = [u for u, ms in self.levels.items() if u > high and decide(ms) != PASS]
            return high, min(above) if above else high + 1, False
        return low, high, True

    def _monotonic_check(self, low: int, high: int) -> SearchResult:
        odd = [
            u for u, ms in self.levels.items() if (u < low and decide(ms) != PASS) or (u > high and decide(ms) == PASS)
        ]
        for users in odd:
            self._measure_valid(users)
        failing = [u for u, ms in self.levels.items() if decide(ms) != PASS]
        monotonic = all(u > low for u in failing) and all(
            decide(self.levels[u]) != PASS for u in self.levels if u >= high
        )
        if not monotonic:
            lowest = min(failing)
            return self._result(lowest - 1, lowest, bracketed=True, monotonic=False)
        return self._result(low, high, bracketed=True)

    def _result(
        self, last_pass: int, first_fail: int | None, *, bracketed: bool, monotonic: bool = True
    ) -> SearchResult:
        return SearchResult(last_pass, first_fail, bracketed, monotonic, self.levels, self.order)
