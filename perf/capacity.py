"""``corral perf capacity``: the capacity search against a live server, and everything it writes.

Each measurement is one ``python -m perf.loadgen`` child process (Locust stays out of this process); the
search itself (``perf.search``) and the plan (``perf.planner``) run here. Output under ``out``: run.json,
levels.csv, requests.jsonl.gz, capacity.json, capacity.png, tradeoff.png and report.md.
"""

from __future__ import annotations

import csv
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from perf import capacity_report
from perf.apis import api_named
from perf.planner import OperatingPoint, Plan, Target, plan
from perf.records import RequestRecord, write_records
from perf.run import workload_arguments
from perf.search import INVALID, CapacitySearch, Measurement, SearchResult
from perf.slo import Slo, goodput, judge, overall
from perf.stats import in_window, summarise
from perf.target import PerfError
from perf.target import Target as Server
from perf.workload import Workload

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Hold:
    """How one level is measured: least warm-up, least and most hold, least requests in the hold."""

    warmup_s: float = 5.0
    min_hold_s: float = 20.0
    max_hold_s: float = 60.0
    min_requests: int = 100
    max_client_cpu: float = 70.0


@dataclass(frozen=True)
class CapacitySpec:
    """A capacity search. ``max_users`` caps the doubling (default: 2 × ``num_parallel``, else 64)."""

    server: Server
    workload: Workload
    slos: Sequence[Slo]
    out: Path
    max_users: int = 64
    repeats: int = 3
    hold: Hold = Hold()
    headroom: float = 0.25
    targets: Sequence[Target] = ()
    stack: str | None = None
    num_parallel: int | None = None


@dataclass
class CapacityResult:
    spec: CapacitySpec
    search: SearchResult
    point: OperatingPoint | None
    plans: list[Plan]
    run: dict[str, Any]
    records: list[RequestRecord] = field(default_factory=list)


class LevelRunner:
    """Measures one level in a child process and judges it; keeps every record for requests.jsonl.gz."""

    def __init__(self, server: Server, workload: Workload, slos: Sequence[Slo], hold: Hold, progress: Progress) -> None:
        self.server = server
        self.workload = workload
        self.slos = slos
        self.hold = hold
        self.progress = progress
        self.records: list[RequestRecord] = []

    def __call__(self, users: int, repeat: int) -> Measurement:
        hold = self.hold
        with tempfile.TemporaryDirectory(prefix="corral-level-") as tmp:
            out = Path(tmp) / "level.json"
            command = [
                sys.executable, "-m", "perf.loadgen", "--url", self.server.url, "--api", self.server.api.name,
                "--users", str(users), "--repeat", str(repeat), "--warmup", str(hold.warmup_s),
                "--min-hold", str(hold.min_hold_s), "--max-hold", str(hold.max_hold_s),
                "--min-requests", str(hold.min_requests), "--out", str(out),
                *workload_arguments(self.workload, Path(tmp), self.server.name, itl_rows=False),
            ]  # fmt: skip
            self._run(command, users, repeat)
            data = json.loads(out.read_text(encoding="utf-8"))
        records = [RequestRecord.from_dict(r) for r in data["records"]]
        self.records.extend(records)
        return self.judge(
            users, repeat, records, tuple(data["window"]), data["client_cpu_pct"], data["client_cpu_warning"]
        )

    def _run(self, command: list[str], users: int, repeat: int) -> None:
        root = Path(__file__).resolve().parent.parent
        # stderr goes to a file: an unread pipe would fill up and stall the child.
        with (
            tempfile.TemporaryFile("w+") as errors,
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=root) as process,
        ):
            assert process.stdout is not None
            for line in process.stdout:
                try:
                    p = json.loads(line)
                except ValueError:
                    continue
                self.progress(
                    f"{users} users (repeat {repeat}) {p['phase']}: {p['requests']} requests, {p['errors']} errors, "
                    f"TTFT p95 {_ms(p['ttft_p95'])}, ITL p95 {_ms(p['itl_p95'])}"
                )
            if process.wait() != 0:
                errors.seek(0)
                raise PerfError(f"the load generator failed at {users} users:\n{errors.read()[-2000:]}")

    def judge(
        self,
        users: int,
        repeat: int,
        records: list[RequestRecord],
        window: tuple[float, float],
        cpu: float,
        cpu_warning: bool,
    ) -> Measurement:
        summary = summarise(records, *window)
        measured = in_window(records, *window)
        checks = judge(self.slos, summary, measured, seed=users * 100 + repeat)
        client_ok = cpu < self.hold.max_client_cpu and not cpu_warning
        return Measurement(
            users=users,
            repeat=repeat,
            summary=summary,
            checks=checks,
            verdict=overall(checks) if client_ok else INVALID,
            client_cpu_pct=cpu,
            client_ok=client_ok,
            goodput=goodput(self.slos, measured, summary.window_s),
            window=window,
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def run_capacity(spec: CapacitySpec, progress: Progress) -> CapacityResult:
    """Search, plan and write everything under ``spec.out``. Raises PerfError (unreachable server, failing
    load generator) or ``search.ClientBound``."""
    spec.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    server_info = spec.server.describe(spec.workload.model)
    progress(f"warming up {spec.workload.model} at {spec.server.url} ...")
    spec.server.warm_up(spec.workload)
    runner = LevelRunner(spec.server, spec.workload, spec.slos, spec.hold, progress)

    def landed(m: Measurement) -> None:
        s = m.summary
        progress(
            f"{m.users} users (repeat {m.repeat}): {m.verdict}, {s.out_tok_s:.0f} tok/s, TTFT p95 {_ms(s.ttft.p95)}, "
            f"ITL p95 {_ms(s.itl.p95)}, errors {s.error_rate:.1%}, client CPU {m.client_cpu_pct:.0f}%"
        )
        _append_level(spec.out / "levels.csv", m)

    (spec.out / "levels.csv").unlink(missing_ok=True)
    search = CapacitySearch(runner, max_users=spec.max_users, repeats=spec.repeats, on_measurement=landed).run()
    point = OperatingPoint.at(search)
    plans = [plan(t, point, spec.headroom) for t in spec.targets] if point else []
    run = _run_info(spec, server_info, started)
    result = CapacityResult(spec, search, point, plans, run, runner.records)
    write_records(spec.out / "requests.jsonl.gz", sorted(runner.records, key=lambda r: r.t_send))
    capacity_report.write(result)
    return result


LEVEL_COLUMNS = [
    "users", "repeat", "window_s", "requests", "errors", "err_rate", "req_s", "out_tok_s",
    "ttft_p50", "ttft_p95", "ttft_p99", "ttft_p95_lo", "ttft_p95_hi",
    "itl_p50", "itl_p95", "itl_p99", "itl_p95_lo", "itl_p95_hi",
    "tpot_p50", "tpot_p95", "e2e_p50", "e2e_p95", "goodput", "verdict", "locust_cpu_pct",
    "window_start", "window_end",
]  # fmt: skip


def level_row(m: Measurement) -> dict[str, Any]:
    s = m.summary
    row: dict[str, Any] = {
        "users": m.users, "repeat": m.repeat, "window_s": round(s.window_s, 2), "requests": s.requests,
        "errors": s.errors, "err_rate": round(s.error_rate, 4), "req_s": round(s.req_s, 3),
        "out_tok_s": round(s.out_tok_s, 1), "goodput": round(m.goodput, 3), "verdict": m.verdict,
        "locust_cpu_pct": round(m.client_cpu_pct, 1),
        "window_start": round(m.window[0], 6), "window_end": round(m.window[1], 6),
    }  # fmt: skip
    for metric in ("ttft", "itl", "tpot", "e2e"):
        d = s.metric(metric)
        for pct in (50, 95, 99):
            key = f"{metric}_p{pct}"
            if key in LEVEL_COLUMNS:
                value = d.at(pct)
                row[key] = None if value is None else round(value, 2)
    for check in m.checks:
        if check.slo.name in ("ttft_p95", "itl_p95") and check.interval:
            row[f"{check.slo.name}_lo"], row[f"{check.slo.name}_hi"] = (round(v, 2) for v in check.interval)
    return row


def _append_level(path: Path, m: Measurement) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=LEVEL_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: v for k, v in level_row(m).items() if k in LEVEL_COLUMNS})


def _run_info(spec: CapacitySpec, server: dict[str, Any], started: float) -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    try:
        root = Path(__file__).resolve().parent.parent
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    except OSError:
        sha = ""
    return {
        "git_sha": sha or None,
        "server": server,
        "num_parallel": spec.num_parallel,
        "versions": {p: version(p) for p in ("corral", "llama-cpp-python", "locust", "geventhttpclient")},
        "client": {"host": platform.node(), "cpus": _cpus(), "workers": 0},
        "workload": spec.workload.describe(),
        "slos": [{"name": s.name, "limit": s.limit, "label": s.label} for s in spec.slos],
        "search": {"max_users": spec.max_users, "repeats": spec.repeats, **asdict(spec.hold)},
        "headroom": spec.headroom,
        "started": started,
        "finished": time.time(),
    }


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def replay(directory: Path, slos: Sequence[Slo], max_users: int, repeats: int) -> SearchResult:
    """Run the search again on a finished run's recorded samples (``levels.csv`` for the windows and the
    client's CPU, ``requests.jsonl.gz`` for the requests), judging them with ``slos``. Raises PerfError when the
    search asks for a measurement the run did not make (other SLOs can lead it elsewhere)."""
    from perf.records import read_records

    by_level: dict[tuple[int, int], list[RequestRecord]] = {}
    for record in read_records(directory / "requests.jsonl.gz"):
        by_level.setdefault((record.users, record.repeat), []).append(record)
    with open(directory / "levels.csv", newline="", encoding="utf-8") as fh:
        rows = {(int(r["users"]), int(r["repeat"])): r for r in csv.DictReader(fh)}
    judge_level = LevelRunner(Server("replay", "", api_named("chat")), Workload(""), slos, Hold(), lambda _: None).judge

    def measure(users: int, repeat: int) -> Measurement:
        row = rows.get((users, repeat))
        if row is None:
            raise PerfError(f"the recorded run has no measurement of {users} users, repeat {repeat}")
        window = (float(row["window_start"]), float(row["window_end"]))
        cpu = float(row["locust_cpu_pct"])
        invalid = row["verdict"] == INVALID  # CPU over the limit, or Locust's own CPU warning fired
        return judge_level(users, repeat, by_level.get((users, repeat), []), window, cpu, invalid)

    return CapacitySearch(measure, max_users=max_users, repeats=repeats).run()
