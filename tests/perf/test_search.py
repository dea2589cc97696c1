"""The capacity search and the planner on synthetic samples of a batching server (no Locust, no server)."""

from __future__ import annotations

import pytest

from perf.planner import (
    OperatingPoint,
    PlanError,
    Target,
    ValidationLoad,
    knee,
    level_table,
    plan,
    stack_snippet,
    target_concurrency,
)
from perf.search import INVALID, CapacitySearch, ClientBound, Measurement, SearchResult, decide
from perf.slo import FAIL, INCONCLUSIVE, PASS, overall, parse_slos
from perf.stats import summarise

from .samples import records

SLOS = parse_slos("ttft_p95=1000ms,itl_p95=100ms,errors=1%")


def batching_server(users: int, repeat: int, *, slots: int = 4, cpu: float = 20.0) -> Measurement:
    """Four slots: tokens slow a little as slots fill, and beyond four users requests queue (TTFT grows
    350 ms per queued user): 6 users pass (TTFT p95 ≈ 850 ms), 7 fail (≈ 1230 ms)."""
    ttft = 80 + 350 * max(0, users - slots)
    itl = 20 * (1 + 0.1 * (min(users, slots) - 1))
    data = records(200, ttft_ms=ttft, itl_ms=itl, tokens=16, seed=users * 10 + repeat, users=users)
    return measurement(users, repeat, data, cpu)


def measurement(users: int, repeat: int, data: list, cpu: float = 20.0) -> Measurement:  # type: ignore[type-arg]
    summary = summarise(data, 0, 1e12)
    from perf.slo import judge

    checks = judge(SLOS, summary, data, seed=users)
    ok = cpu < 70
    return Measurement(users, repeat, summary, checks, overall(checks) if ok else INVALID, cpu, ok)


def test_search_finds_the_boundary_with_interleaved_repeats() -> None:
    seen: list[tuple[int, int]] = []
    result = CapacitySearch(
        batching_server, max_users=8, repeats=3, on_measurement=lambda m: seen.append((m.users, m.repeat))
    ).run()
    assert (result.max_users, result.first_fail, result.bracketed, result.monotonic) == (6, 7, True, True)
    # coarse doubling, bisection (6 passes, 7 fails), then L and F confirmed in turns
    assert seen == [(1, 1), (2, 1), (4, 1), (8, 1), (6, 1), (7, 1), (6, 2), (7, 2), (6, 3), (7, 3)]
    rows = level_table(result)
    assert [r["users"] for r in rows] == [1, 2, 4, 6, 7, 8]
    assert [r["verdict"] for r in rows] == [PASS, PASS, PASS, PASS, FAIL, FAIL]


def test_everything_passes_or_nothing_does() -> None:
    result = CapacitySearch(batching_server, max_users=4).run()
    assert (result.max_users, result.first_fail, result.bracketed) == (4, None, False)
    hopeless = CapacitySearch(lambda u, r: batching_server(u + 10, r), max_users=8).run()
    assert (hopeless.max_users, hopeless.first_fail) == (0, 1)


def test_client_bound_runs_are_invalid_not_failures() -> None:
    calls: list[int] = []

    def flaky_client(users: int, repeat: int) -> Measurement:
        calls.append(users)
        return batching_server(users, repeat, cpu=95.0 if len(calls) == 2 else 20.0)

    result = CapacitySearch(flaky_client, max_users=8, repeats=1).run()
    assert result.max_users == 6
    assert [m.verdict for m in result.levels[2]] == [INVALID, PASS]  # retried, not counted as a fail
    with pytest.raises(ClientBound, match="add --workers"):
        CapacitySearch(lambda u, r: batching_server(u, r, cpu=99.0), max_users=8).run()


def test_inconclusive_measurement_is_repeated() -> None:
    def edge(users: int, repeat: int) -> Measurement:
        if users == 1:  # TTFT p95 right at the limit: the interval straddles it
            data = records(200, ttft_ms=1000 / 1.09, jitter=0.1, seed=repeat)
            return measurement(users, repeat, data)
        return batching_server(users + 10, repeat)

    search = CapacitySearch(edge, max_users=2, repeats=3)
    search.measure(1)
    assert len(search.levels[1]) >= 2
    assert search.levels[1][0].verdict == INCONCLUSIVE


def test_non_monotonic_verdict_takes_the_lowest_failure() -> None:
    search = CapacitySearch(batching_server, max_users=8)
    search.levels = {
        2: [batching_server(2, 1)],
        3: [batching_server(9, 1)],  # a failure below the bracket, twice
        4: [batching_server(4, 1)],
        5: [batching_server(9, 1)],
    }
    search._measure = lambda u, r: batching_server(9, r)  # the rerun of level 3 fails again
    result = search._monotonic_check(4, 5)
    assert (result.max_users, result.monotonic) == (2, False)
    assert decide([]) == INCONCLUSIVE


def test_knee() -> None:
    users = [1, 2, 4, 6, 8, 12, 16]
    flat = [50, 100, 190, 260, 270, 272, 275]
    found = knee(users, flat)
    assert found.users in (6, 8), found
    assert knee(users, [u * 50 for u in users]).users is None
    assert "at least 5" in knee([1, 2, 4], [1, 2, 3]).reason


def test_replica_plans() -> None:
    point = OperatingPoint(users=6, out_tok_s=240.0, req_s=4.0, e2e_p50_ms=1500.0)
    users = plan(Target.parse("users=200"), point)  # 200 / (6 * 0.75) = 44.4 -> 45, +1
    assert (users.replicas_for_load, users.replicas) == (45, 46)
    rps = plan(Target.parse("rps=5"), point, headroom=0.0)  # 5 / 4 -> 2, +1
    assert (rps.replicas_for_load, rps.replicas, rps.little_users) == (2, 3, 7.5)
    tokens = plan(Target.parse("tokens=2000"), point)  # 2000 / 180 = 11.1 -> 12, +1
    assert tokens.replicas == 13
    exact = plan(Target.parse("users=9"), point)  # 9 / 4.5 = 2 exactly
    assert exact.replicas_for_load == 2
    for bad in ("users", "rps=-1", "qps=3", "tokens=lots"):
        with pytest.raises(PlanError):
            Target.parse(bad)
    with pytest.raises(PlanError, match="headroom"):
        plan(Target.parse("users=1"), point, headroom=1.0)
    snippet = stack_snippet("gpu", 46, 4)
    assert "corral:replicas: 46" in snippet and "corral:num_parallel: 4" in snippet
    assert "#   max_replicas: 92" in snippet
    assert "load_test" not in snippet
    assert target_concurrency(users, point) == 200
    assert target_concurrency(rps, point) == 8  # 5 req/s x 1.5 s (Little's law), rounded up
    assert target_concurrency(tokens, point) == 50  # 2000 tok/s over 40 tok/s per stream at 6 users
    load = ValidationLoad("smollm2:135m", 250, "chat", 16, 32, parse_slos("ttft_p95=1s,itl_p95=100ms,errors=1%"))
    with_load = stack_snippet("gpu", 46, 4, load)
    assert with_load.startswith(snippet)
    assert "  #   users: 250\n  #   workers: 3\n" in with_load
    assert "  #   slo: ttft_p95=1000ms,itl_p95=100ms,errors=1%\n" in with_load


def test_operating_point_medians() -> None:
    result = CapacitySearch(batching_server, max_users=8, repeats=3).run()
    point = OperatingPoint.at(result)
    assert point is not None and point.users == 6
    assert point.out_tok_s > 0 and point.e2e_p50_ms > 0
    assert OperatingPoint.at(SearchResult(0, 1, True, True)) is None
