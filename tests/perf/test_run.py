"""``corral perf run`` end to end: Locust (in child processes) against the fake streaming server, with
exact counts checked against the server's own log, and a short real run against ``corral serve``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from perf.records import RequestRecord, read_records
from server.cli import main

from .conftest import FakeServer


def perf_run(out: Path, url: str, *args: str, model: str = "fake") -> tuple[int, str]:
    stdout = io.StringIO()
    code = main(["perf", "run", "--url", url, "--model", model, "--out", str(out), *args], out=stdout)
    return code, stdout.getvalue()


def served(server: FakeServer, records: list[RequestRecord], users: int) -> list[dict[str, Any]]:
    """The server's log entries of the recorded requests, after checking that the only requests the server
    saw and the client did not record are each user's last one (in flight when Locust stopped the run; prompt
    ids are ``<process>.<user>.<sequence>``)."""
    log = [e for e in server.stats() if e["prompt_id"] != "warmup"]
    recorded = {r.prompt_id for r in records}
    last: dict[str, int] = {}
    for r in records:
        user, sequence = r.prompt_id.rsplit(".", 1)
        last[user] = max(last.get(user, 0), int(sequence))
    cut_off = [e for e in log if e["prompt_id"] not in recorded]
    for e in cut_off:
        user, sequence = e["prompt_id"].rsplit(".", 1)
        assert int(sequence) == last.get(user, 0) + 1, f"{e['prompt_id']} was served but not recorded"
    assert len(cut_off) <= users
    assert len(recorded) == len(records)  # no request recorded twice
    return [e for e in log if e["prompt_id"] in recorded]


@pytest.mark.parametrize("api", ["chat", "generate", "openai-chat", "openai-completions", "embed"])
def test_counts_are_exact(api: str, tmp_path: Path, fake_server: Callable[..., FakeServer]) -> None:
    # Two tokens per chunk: a client that counted chunks would report half the server's eval_count.
    server = fake_server("--ttft-ms", "20", "--itl-ms", "10", "--tokens-per-chunk", "2",
                         "--plant-503", "3", "--plant-truncate", "5")  # fmt: skip
    code, _ = perf_run(tmp_path, server.url, "--api", api, "--users", "3", "--duration", "4s", "--warmup", "0s",
                       "--output-tokens", "16")  # fmt: skip
    assert code == 0
    records = list(read_records(tmp_path / "requests.jsonl.gz"))
    log = served(server, records, users=3)
    assert len(records) == len(log) > 10
    errors = [r for r in records if not r.ok]
    planted = 1 if api == "embed" else 2  # the 503 and (streams only) the truncated stream
    assert len(errors) == planted, [r.error for r in errors]
    assert any(r.status == 503 for r in errors)
    summary = json.loads((tmp_path / "summary.json").read_text())["summary"]
    assert (summary["requests"], summary["errors"]) == (len(log), planted)
    if api != "embed":
        assert all(r.tokens_from_server for r in records if r.ok)
        assert summary["output_tokens"] == sum(e["eval_count"] for e in log if e["status"] == 200)
        assert summary["ttft"]["count"] == len(log) - planted
    for name in ("locust_stats.csv", "locust.html", "report.md"):
        assert (tmp_path / name).is_file()


def receive_times(record: RequestRecord) -> list[float]:
    assert record.ttft_ms is not None
    offsets = np.cumsum([record.ttft_ms, *record.gaps_ms]) / 1000
    return [record.t_send + float(o) for o in offsets]


def test_client_adds_no_lag(tmp_path: Path, fake_server: Callable[..., FakeServer]) -> None:
    """At the CI load (8 streams, 50 ms TTFT, 20 ms per token) the client's TTFT and ITL match what the fake
    did (its logged send times, paired per request and per gap) within 2 ms at p50, and the client's lag
    (receive time minus the fake's send time of the same chunk) is within 5 % of the ITL at p50. The fake's
    own lateness on a busy machine (its arrival and send delays) is printed, not blamed on the client."""
    server = fake_server("--ttft-ms", "50", "--itl-ms", "20")
    code, _ = perf_run(tmp_path, server.url, "--users", "8", "--duration", "8s", "--warmup", "1s",
                       "--output-tokens", "32")  # fmt: skip
    assert code == 0
    records = [r for r in read_records(tmp_path / "requests.jsonl.gz") if r.ok]
    log = {e["prompt_id"]: e for e in served(server, list(read_records(tmp_path / "requests.jsonl.gz")), users=8)}
    sent = {key: e["sent"] for key, e in log.items()}
    assert len(records) > 50
    lags = [(got - want) * 1000 for r in records for got, want in zip(receive_times(r), sent[r.prompt_id], strict=True)]
    # Paired: what the client recorded minus what the fake did (both clocks are this machine's wall clock).
    ttft_error = [r.ttft_ms - (sent[r.prompt_id][0] - r.t_send) * 1000 for r in records]
    kept_gaps = [
        (b - a) * 1000 for r in records for a, b in zip(sent[r.prompt_id], sent[r.prompt_id][1:], strict=False)
    ]
    itl_error = [g - k for g, k in zip([g for r in records for g in r.gaps_ms], kept_gaps, strict=True)]
    arrival = [(log[r.prompt_id]["arrived"] - r.t_send) * 1000 for r in records]
    lag50, lag95 = np.percentile(lags, [50, 95])
    print(
        f"TTFT error p50 {np.percentile(ttft_error, 50):.2f} ms, ITL error p50 {np.percentile(itl_error, 50):.2f} ms, "
        f"client lag p50 {lag50:.2f} ms, p95 {lag95:.2f} ms; the fake: send-to-arrival p50 "
        f"{np.percentile(arrival, 50):.2f} ms, ITL p50 {np.percentile(kept_gaps, 50):.2f} ms"
    )
    assert abs(np.percentile(ttft_error, 50)) <= 2
    assert abs(np.percentile(itl_error, 50)) <= 2
    assert abs(np.percentile(kept_gaps, 50) - 20) <= 2  # the fake kept its pace: the load was the intended one
    assert np.percentile(arrival, 50) <= 10  # a client that held requests back would show here
    assert lag50 <= 0.05 * 20


def test_workers_count_exactly(tmp_path: Path, fake_server: Callable[..., FakeServer]) -> None:
    """Locust master + 2 local workers: every worker's requests are recorded, none twice."""
    server = fake_server("--ttft-ms", "20", "--itl-ms", "10")
    code, _ = perf_run(tmp_path, server.url, "--users", "4", "--workers", "2", "--duration", "6s", "--warmup", "0s",
                       "--output-tokens", "8")  # fmt: skip
    assert code == 0
    records = list(read_records(tmp_path / "requests.jsonl.gz"))
    assert len(records) == len(served(server, records, users=4)) > 10
    assert len({r.prompt_id.split(".")[0] for r in records}) == 2  # two worker processes sent them
    assert "2 Locust workers" in (tmp_path / "report.md").read_text()


def test_slo_exit_codes(tmp_path: Path, fake_server: Callable[..., FakeServer]) -> None:
    server = fake_server("--ttft-ms", "30", "--itl-ms", "5")
    short = ("--users", "2", "--duration", "3s", "--warmup", "0s", "--output-tokens", "8")
    code, text = perf_run(tmp_path / "pass", server.url, *short, "--slo", "ttft_p95=1000ms,itl_p95=100ms,errors=1%")
    assert code == 0, text
    code, text = perf_run(tmp_path / "fail", server.url, *short, "--slo", "ttft_p95=5ms")
    assert code == 3
    assert "TTFT p95 ≤ 5 ms: BROKEN" in text
    assert perf_run(tmp_path / "bad", server.url, *short, "--slo", "ttft=5")[0] == 2


def test_unreachable_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from .conftest import free_port

    code, _ = perf_run(tmp_path, f"http://127.0.0.1:{free_port()}", "--duration", "2s", "--warmup", "0s")
    assert code == 1
    assert "start the server or check --url" in capsys.readouterr().err


@pytest.mark.slow
def test_real_server_short_run(tmp_path: Path, corral_server: str) -> None:
    """The CI run: 2 users for 15 s against corral serve (smollm2:135m); a broken SLO exits 3 and the metrics
    are those of a real stream."""
    short = ("--users", "2", "--duration", "15s", "--warmup", "3s", "--output-tokens", "16", "--input-words", "16")
    code, text = perf_run(tmp_path, corral_server, *short, "--slo", "ttft_p95=1ms", model="smollm2:135m")
    assert code == 3, text
    summary = json.loads((tmp_path / "summary.json").read_text())
    s = summary["summary"]
    assert s["requests"] >= 2 and s["errors"] == 0
    assert s["out_tok_s"] > 0 and s["ttft"]["p50"] > 0 and s["itl"]["count"] > 0
    records = list(read_records(tmp_path / "requests.jsonl.gz"))
    assert all(r.tokens_from_server and 0 < r.output_tokens <= 16 for r in records)
    assert all(r.prompt_tokens is not None and r.prompt_tokens > 16 for r in records)
    assert summary["server"]["version"]["version"]
    assert summary["slo"][0]["verdict"] == "fail"


def test_plain_locust_slo_gate(tmp_path: Path, fake_server: Callable[..., FakeServer]) -> None:
    """The locustfile alone (``locust -f perf/locustfile.py``) gates on --slo with exit code 3."""
    import subprocess
    import sys

    server = fake_server("--ttft-ms", "30", "--itl-ms", "5")
    command = [
        sys.executable, "-m", "locust", "-f", "perf/locustfile.py", "OpenAIChatUser", "--headless", "-u", "2",
        "-r", "2", "-t", "3s", "-H", server.url, "--model", "fake", "--output-tokens", "8", "--only-summary",
        "--records-dir", str(tmp_path),
    ]  # fmt: skip
    repo = Path(__file__).resolve().parents[2]
    broken = subprocess.run([*command, "--slo", "ttft_p95=5ms"], cwd=repo, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 3, broken.stdout + broken.stderr
    assert "SLO broken for openai-chat: TTFT p95 ≤ 5 ms" in broken.stdout + broken.stderr
    held = subprocess.run(
        [*command, "--slo", "ttft_p95=2s,errors=1%"], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert held.returncode == 0, held.stdout + held.stderr
    assert list(tmp_path.glob("records-*.jsonl"))
