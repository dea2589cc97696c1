"""``corral perf compare``: the same workload against several servers, interleaved, in one table.

Targets are ``NAME=[native@|openai@]URL[#MODEL]``: the native dialect drives ``/api/chat``, ``openai`` drives
``/v1/chat/completions``, so any Ollama- or OpenAI-compatible server can be compared. Each round measures
every users level on every target in turn (round-robin, so drift spreads over all of them); each cell of the
table is the median over rounds, with ratios to the first target. ``merge`` combines the ``compare.json``
of separate runs (servers that cannot run side by side on a small machine) into one table, pooling the rounds
of a target measured in several runs: how fast a llama.cpp server decodes varies from one start of it to the
next (by up to ~10% on the 2-core development machine, while steady within one start), so a fair comparison
restarts every server several times.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from perf.apis import api_named
from perf.capacity import Hold, LevelRunner
from perf.records import write_records
from perf.report import fmt, markdown_table
from perf.search import Measurement
from perf.target import Target
from perf.workload import Workload


class CompareError(ValueError):
    """A target that cannot be read; the message shows the expected form."""


@dataclass(frozen=True)
class CompareTarget:
    server: Target
    model: str | None


def parse_target(text: str) -> CompareTarget:
    """``corral=http://127.0.0.1:11434``, ``llama=openai@http://127.0.0.1:8080#smollm2``."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise CompareError(f"cannot read target {text!r}; use NAME=[native@|openai@]URL[#MODEL]")
    dialect, at, url = rest.partition("@")
    if not at or "://" in dialect:
        dialect, url = "native", rest
    url, _, model = url.partition("#")
    if dialect not in ("native", "openai") or not url.startswith(("http://", "https://")):
        raise CompareError(f"cannot read target {text!r}; use NAME=[native@|openai@]URL[#MODEL]")
    return CompareTarget(Target(name, url.rstrip("/"), api_named(dialect)), model or None)


def run_compare(
    targets: Sequence[CompareTarget],
    workload: Workload,
    users_levels: Sequence[int],
    rounds: int,
    hold: Hold,
    out: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Measure, write compare.json, compare.md and requests.jsonl.gz under ``out``; returns the table data."""
    out.mkdir(parents=True, exist_ok=True)
    runners = {}
    info = {}
    for t in targets:
        w = replace(workload, model=t.model or workload.model)
        info[t.server.name] = t.server.describe(w.model)
        progress(f"warming up {t.server.name} ...")
        t.server.warm_up(w)
        runners[t.server.name] = LevelRunner(t.server, w, (), hold, progress)
    results: dict[tuple[str, int], list[Measurement]] = {}
    for rnd in range(1, rounds + 1):
        for users in users_levels:
            for t in targets:
                progress(f"round {rnd}/{rounds}: {t.server.name} at {users} users")
                results.setdefault((t.server.name, users), []).append(runners[t.server.name](users, rnd))
    records = [r for runner in runners.values() for r in runner.records]
    write_records(out / "requests.jsonl.gz", sorted(records, key=lambda r: r.t_send))
    data = {
        "workload": workload.describe(),
        "targets": [
            {"name": t.server.name, "url": t.server.url, "api": t.server.api.name, "model": t.model} for t in targets
        ],
        "servers": info,
        "rows": [_row(name, users, ms) for (name, users), ms in results.items()],
    }
    (out / "compare.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (out / "compare.md").write_text(markdown(data), encoding="utf-8")
    return data


# The per-round figures a row keeps; its cells are their medians, so rows of separate runs can be pooled.
_ROUND_VALUES: dict[str, Callable[[Measurement], float | None]] = {
    "out_tok_s": lambda m: m.summary.out_tok_s,
    "req_s": lambda m: m.summary.req_s,
    "ttft_p50": lambda m: m.summary.ttft.p50,
    "ttft_p95": lambda m: m.summary.ttft.p95,
    "itl_p50": lambda m: m.summary.itl.p50,
    "itl_p95": lambda m: m.summary.itl.p95,
    "client_cpu_pct": lambda m: m.client_cpu_pct,
}
ROUND_FIELDS = tuple(_ROUND_VALUES)


def _row(name: str, users: int, ms: list[Measurement]) -> dict[str, Any]:
    per_round = {field: [value(m) for m in ms] for field, value in _ROUND_VALUES.items()}
    errors = sum(m.summary.errors for m in ms)
    return _summarized(name, users, per_round, errors, sum(m.summary.requests for m in ms))


def _summarized(
    name: str, users: int, per_round: dict[str, list[float | None]], errors: int, requests: int
) -> dict[str, Any]:
    def med(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    return {
        "target": name,
        "users": users,
        "rounds": len(per_round["out_tok_s"]),
        **{field: med(per_round[field]) for field in ROUND_FIELDS},
        "errors": errors,
        "requests": requests,
        "per_round": per_round,
    }


def table_rows(data: dict[str, Any]) -> list[list[str]]:
    """One row per (users, target), the first target's tok/s as the base of the ratio column."""
    rows = sorted(data["rows"], key=lambda r: r["users"])
    order = [t["name"] for t in data["targets"]]
    base = {r["users"]: r["out_tok_s"] for r in rows if r["target"] == order[0]}
    out = []
    for users in sorted({r["users"] for r in rows}):
        for r in sorted((r for r in rows if r["users"] == users), key=lambda r: order.index(r["target"])):
            ratio = r["out_tok_s"] / base[users] if base.get(users) else None
            out.append([
                r["target"], str(users), fmt(r["out_tok_s"], 1), fmt(ratio, 2) + "x" if ratio else "-",
                fmt(r["ttft_p50"]), fmt(r["ttft_p95"]), fmt(r["itl_p50"], 1), fmt(r["itl_p95"], 1),
                f"{r['errors']}/{r['requests']}",
            ])  # fmt: skip
    return out


HEADERS = ["target", "users", "tok/s", "vs first", "TTFT p50", "TTFT p95", "ITL p50", "ITL p95", "errors"]


def markdown(data: dict[str, Any]) -> str:
    w = data["workload"]
    return (
        f"# Compare: {', '.join(t['name'] for t in data['targets'])}\n\n"
        f"Same workload on every target: {w['input_words']} filler words per prompt (unique prefixes), "
        f"{w['output_tokens']} output tokens asked, streamed, closed loop. Times in ms; medians over rounds.\n\n"
        + markdown_table(HEADERS, table_rows(data))
    )


def merge(paths: Sequence[Path]) -> dict[str, Any]:
    """One table from several compare.json files, targets in the order first seen (the first is the ratio
    base). Rows of the same target and users level pool their rounds: a server measured in several runs, each
    a fresh start of it, gets the median over all of them."""
    merged: dict[str, Any] = {"workload": None, "targets": [], "servers": {}, "rows": []}
    pooled: dict[tuple[str, int], dict[str, Any]] = {}
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        if merged["workload"] not in (None, data["workload"]):
            raise CompareError(f"{path} used another workload; compare only runs of the same workload")
        merged["workload"] = data["workload"]
        known = {t["name"] for t in merged["targets"]}
        merged["targets"] += [t for t in data["targets"] if t["name"] not in known]
        for name, info in data["servers"].items():
            merged["servers"].setdefault(name, info)
        for row in data["rows"]:
            # compare.json written before rows kept their rounds: the row's medians count as one round.
            rounds = row.get("per_round") or {field: [row.get(field)] for field in ROUND_FIELDS}
            into = pooled.setdefault(
                (row["target"], row["users"]),
                {"per_round": {field: [] for field in ROUND_FIELDS}, "errors": 0, "requests": 0},
            )
            for field in ROUND_FIELDS:
                into["per_round"][field] += rounds.get(field, [])
            into["errors"] += row["errors"]
            into["requests"] += row["requests"]
    merged["rows"] = [
        _summarized(name, users, p["per_round"], p["errors"], p["requests"]) for (name, users), p in pooled.items()
    ]
    return merged
