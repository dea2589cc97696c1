"""``corral perf capacity`` and ``corral perf compare`` end to end against fake servers with a known limit."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from perf.capacity import replay
from perf.compare import ROUND_FIELDS, CompareError, merge, parse_target, table_rows
from perf.planner import OperatingPoint, Target, plan
from perf.records import read_records
from perf.slo import parse_slos
from server.cli import main

from .conftest import FakeServer


def test_capacity_finds_the_slot_limit(tmp_path: Path, fake_server: Callable[..., FakeServer]) -> None:
    """Two slots, 8 tokens at 10 ms after a 20 ms TTFT (about 100 ms a request): a third user waits for a slot,
    so TTFT p95 passes 60 ms only up to 2 users."""
    server = fake_server("--slots", "2", "--ttft-ms", "20", "--itl-ms", "10")
    out = io.StringIO()
    code = main(
        ["perf", "capacity", "--url", server.url, "--model", "fake", "--slo", "ttft_p95=60ms,errors=1%",
         "--output-tokens", "8", "--max-users", "4", "--repeats", "2", "--warmup", "1s", "--min-hold", "2s",
         "--max-hold", "6s", "--min-requests", "20", "--target", "users=10", "--stack", "gpu", "--num-parallel", "2",
         "--out", str(tmp_path)],
        out=out,
    )  # fmt: skip
    assert code == 0, out.getvalue()
    capacity = json.loads((tmp_path / "capacity.json").read_text())
    assert capacity["max_users_per_replica"] == 2
    assert capacity["first_fail"] == 3 and capacity["first_fail_slo"] == "ttft_p95"
    assert capacity["binding_slo"] == "ttft_p95"
    assert capacity["plans"][0]["replicas"] == 8  # 10 / (2 * 0.75) = 6.7 -> 7, +1
    with open(tmp_path / "levels.csv") as fh:
        levels = list(csv.DictReader(fh))
    assert [(r["users"], r["verdict"]) for r in capacity["levels"]] == [
        (1, "pass"),
        (2, "pass"),
        (3, "fail"),
        (4, "fail"),
    ]
    assert all(float(r["locust_cpu_pct"]) < 70 for r in levels)
    records = list(read_records(tmp_path / "requests.jsonl.gz"))
    assert {r.users for r in records} == {1, 2, 3, 4}
    for name in ("run.json", "capacity.png", "tradeoff.png", "report.md", "Pulumi.gpu.snippet.yaml"):
        assert (tmp_path / name).stat().st_size > 0, name
    snippet = (tmp_path / "Pulumi.gpu.snippet.yaml").read_text()
    assert "corral:replicas: 8" in snippet
    assert "  # corral:load_test:\n  #   model: fake\n" in snippet and "  #   users: 10\n" in snippet
    assert "  #   slo: ttft_p95=60ms,errors=1%\n" in snippet
    assert "Max users per replica: 2" in out.getvalue()
    assert "target users=10: 8 replicas" in out.getvalue()
    # The planner on the recorded samples: the same verdicts, measurement by measurement.
    replayed = replay(tmp_path, parse_slos("ttft_p95=60ms,errors=1%"), max_users=4, repeats=2)
    assert (replayed.max_users, replayed.first_fail) == (2, 3)
    assert [(m.users, m.verdict) for m in replayed.order] == [(int(r["users"]), r["verdict"]) for r in levels]


def test_compare_two_servers(tmp_path: Path, fake_server: Callable[..., FakeServer]) -> None:
    fast = fake_server("--ttft-ms", "20", "--itl-ms", "10")
    slow = fake_server("--ttft-ms", "20", "--itl-ms", "20")
    out = io.StringIO()
    code = main(
        ["perf", "compare", "--model", "fake", "--target", f"fast={fast.url}", "--target", f"slow=openai@{slow.url}",
         "--users", "1,2", "--duration", "3s", "--warmup", "1s", "--rounds", "1", "--output-tokens", "16",
         "--out", str(tmp_path)],
        out=out,
    )  # fmt: skip
    assert code == 0, out.getvalue()
    data = json.loads((tmp_path / "compare.json").read_text())
    rows = {(r["target"], r["users"]): r for r in data["rows"]}
    assert set(rows) == {("fast", 1), ("fast", 2), ("slow", 1), ("slow", 2)}
    ratio = rows[("slow", 2)]["out_tok_s"] / rows[("fast", 2)]["out_tok_s"]
    assert 0.4 < ratio < 0.75  # twice the ITL: a bit more than half the tokens/s
    assert rows[("slow", 1)]["itl_p50"] == pytest.approx(20, abs=2)
    assert [r[0] for r in table_rows(data)] == ["fast", "slow", "fast", "slow"]
    # Merging a run with itself pools its rounds: same targets and medians, twice the rounds and requests.
    merged = merge([tmp_path / "compare.json", tmp_path / "compare.json"])
    assert [t["name"] for t in merged["targets"]] == ["fast", "slow"]
    again = {(r["target"], r["users"]): r for r in merged["rows"]}
    assert set(again) == set(rows)
    for key, row in rows.items():
        assert again[key]["rounds"] == 2
        assert again[key]["out_tok_s"] == row["out_tok_s"]
        assert again[key]["requests"] == 2 * row["requests"]


def _compare_json(path: Path, target: str, tok_s: list[float], errors: int = 0) -> Path:
    """A compare.json of one target at 1 user with the given per-round tokens/s."""
    per_round = {field: [1.0] * len(tok_s) for field in ROUND_FIELDS} | {"out_tok_s": tok_s}
    data = {
        "workload": {"input_words": 8, "output_tokens": 8},
        "targets": [{"name": target, "url": "http://127.0.0.1:1", "api": "chat", "model": None}],
        "servers": {target: {"start": str(path)}},
        "rows": [
            {"target": target, "users": 1, "rounds": len(tok_s), "out_tok_s": statistics.median(tok_s),
             "errors": errors, "requests": 10, "per_round": per_round}
        ],
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_merge_pools_the_rounds_of_separate_starts_of_a_server(tmp_path: Path) -> None:
    files = [
        _compare_json(tmp_path / "a1.json", "a", [10.0, 11.0]),
        _compare_json(tmp_path / "b1.json", "b", [30.0]),
        _compare_json(tmp_path / "a2.json", "a", [20.0, 21.0], errors=1),
        _compare_json(tmp_path / "a3.json", "a", [12.0]),
    ]
    merged = merge(files)
    assert [t["name"] for t in merged["targets"]] == ["a", "b"]
    assert merged["servers"]["a"] == {"start": str(tmp_path / "a1.json")}
    rows = {r["target"]: r for r in merged["rows"]}
    assert rows["a"]["rounds"] == 5
    assert rows["a"]["out_tok_s"] == 12.0  # the median of 10, 11, 12, 20, 21: not a median of medians (15.5)
    assert (rows["a"]["errors"], rows["a"]["requests"]) == (1, 30)
    assert [r[3] for r in table_rows(merged)] == ["1.00x", "2.50x"]


def test_merge_reads_compare_json_written_before_rows_kept_their_rounds(tmp_path: Path) -> None:
    old = _compare_json(tmp_path / "old.json", "a", [10.0, 14.0])
    data = json.loads(old.read_text())
    del data["rows"][0]["per_round"]
    old.write_text(json.dumps(data))
    merged = merge([old, _compare_json(tmp_path / "new.json", "a", [20.0, 30.0])])
    assert merged["rows"][0]["rounds"] == 3
    assert merged["rows"][0]["out_tok_s"] == 20.0  # the old row's median (12) counts once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("corral=http://127.0.0.1:11434", ("corral", "http://127.0.0.1:11434", "chat", None)),
        ("llama=openai@http://127.0.0.1:8080/#smol", ("llama", "http://127.0.0.1:8080", "openai-chat", "smol")),
    ],
)
def test_parse_target(text: str, expected: tuple[str, str, str, str | None]) -> None:
    t = parse_target(text)
    assert (t.server.name, t.server.url, t.server.api.name, t.model) == expected


@pytest.mark.parametrize("text", ["http://x", "a=grpc@http://x", "a=ftp://x", "=http://x"])
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(CompareError):
        parse_target(text)


def test_planner_on_a_recorded_run() -> None:
    """A real `corral perf capacity` run (smollm2:135m, OLLAMA_NUM_PARALLEL=4, on the 2-core development machine)
    replayed from its recorded requests: the search reaches the same answer through the same measurements, and
    the planner's numbers match what the run reported."""
    recorded = Path(__file__).parent / "data" / "capacity-smollm2"
    run = json.loads((recorded / "run.json").read_text())
    reported = json.loads((recorded / "capacity.json").read_text())
    slos = parse_slos(
        ",".join(f"{s['name']}={s['limit']}" + ("" if s["name"] == "errors" else "ms") for s in run["slos"])
    )
    result = replay(recorded, slos, max_users=run["search"]["max_users"], repeats=run["search"]["repeats"])
    assert result.max_users == reported["max_users_per_replica"] == 2
    assert result.first_fail == reported["first_fail"] == 3
    with open(recorded / "levels.csv") as fh:
        assert [(m.users, m.verdict) for m in result.order] == [
            (int(r["users"]), r["verdict"]) for r in csv.DictReader(fh)
        ]
    point = OperatingPoint.at(result)
    assert point is not None
    assert point.out_tok_s == pytest.approx(reported["at_max"]["out_tok_s"])
    assert plan(Target.parse("users=200"), point).replicas == reported["plans"][0]["replicas"]
