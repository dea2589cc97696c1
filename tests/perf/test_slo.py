"""SLO parsing and verdicts, summaries and bootstrap intervals, on synthetic records."""

from __future__ import annotations

import pytest

from perf.records import read_records, write_records
from perf.slo import FAIL, INCONCLUSIVE, PASS, Slo, SloError, goodput, judge, overall, parse_slos
from perf.stats import bootstrap_interval, in_window, summarise

from .samples import records


def test_parse_slos() -> None:
    slos = parse_slos("ttft_p95=1000ms, itl_p99=0.1s,errors=1%,e2e_p50=2500")
    assert slos == [Slo("ttft", 95, 1000.0), Slo("itl", 99, 100.0), Slo("errors", None, 0.01), Slo("e2e", 50, 2500.0)]
    assert parse_slos("errors=0.02")[0].limit == 0.02
    assert slos[0].label == "TTFT p95 ≤ 1000 ms"


@pytest.mark.parametrize("text", ["ttft=1000ms", "latency_p95=1s", "ttft_p95=fast", "errors=lots", " , "])
def test_parse_slos_rejects(text: str) -> None:
    with pytest.raises(SloError):
        parse_slos(text)


def test_summary_window_drops_warmup_and_counts_exactly() -> None:
    data = records(100, tokens=16, errors=3, spacing_s=0.1)  # sent at 1000.0 .. 1009.9
    start, end = 1002.0, 1020.0
    summary = summarise(data, start, end)
    measured = in_window(data, start, end)
    assert summary.requests == len(measured) == 80
    assert summary.errors == 0  # the 503s were sent during warm-up
    assert summary.output_tokens == 16 * sum(1 for r in data if r.ok and start <= r.t_done <= end)
    assert summary.itl.count == 80 * 15
    assert summary.ttft.p50 == pytest.approx(100, rel=0.05)
    assert summary.tpot.p50 == pytest.approx(20, rel=0.05)
    whole = summarise(data, 1000.0, 1020.0)
    assert (whole.requests, whole.errors, whole.error_rate) == (100, 3, 0.03)
    assert whole.errors_by_reason == {"HTTP 503": 3}


def test_bootstrap_interval_brackets_the_estimate() -> None:
    data = records(200, ttft_ms=100, jitter=0.2)
    low, high = bootstrap_interval(data, "ttft", 95) or (0, 0)
    p95 = summarise(data, 0, 1e9).ttft.p95
    assert p95 is not None and low <= p95 <= high
    assert 100 < low < high < 121
    itl = bootstrap_interval(data, "itl", 95)
    assert itl is not None and 20 < itl[0] < itl[1] < 24.5
    assert bootstrap_interval(data[:1], "ttft", 95) is None


def test_judge_confident_and_inconclusive() -> None:
    data = records(300, ttft_ms=100, itl_ms=20, jitter=0.2)
    summary = summarise(data, 0, 1e9)
    checks = judge(parse_slos("ttft_p95=200ms,itl_p95=10ms,errors=1%"), summary, data)
    assert [c.verdict for c in checks] == [PASS, FAIL, PASS]
    assert overall(checks) == FAIL
    p95 = summary.ttft.p95
    assert p95 is not None
    edge = judge([Slo("ttft", 95, p95)], summary, data)  # the limit sits on the estimate: cannot tell
    assert edge[0].verdict == INCONCLUSIVE and edge[0].confident


def test_errors_slo_and_goodput() -> None:
    data = records(100, errors=10)
    summary = summarise(data, 0, 1e9)
    checks = judge(parse_slos("errors=1%"), summary, data)
    assert checks[0].value == pytest.approx(0.10) and checks[0].verdict == FAIL
    assert goodput(parse_slos("ttft_p95=1000ms"), data, 10.0) == pytest.approx(9.0)
    assert goodput(parse_slos("ttft_p95=50ms"), data, 10.0) == 0.0


def test_records_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = records(5, errors=1)
    assert write_records(tmp_path / "r.jsonl.gz", data) == 5
    assert [r.to_dict() for r in read_records(tmp_path / "r.jsonl.gz")] == [r.to_dict() for r in data]
