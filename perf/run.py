"""One headless load run through the ``locust`` command: ``corral perf run``.

The run is Locust's own (its CSV files and HTML report are kept); the numbers that count are recomputed from
the raw per-request records, after dropping the warm-up window: ``summary.json``, ``report.md`` and
``requests.jsonl.gz``. This module starts Locust as separate processes and never imports it.

With ``workers`` > 0 it starts a Locust master and that many local worker processes (Locust's own distributed
mode over ZeroMQ on loopback): the same engine a cluster run uses, with the master on other machines' ports.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perf import report
from perf.records import RecordTail, RequestRecord, write_records
from perf.slo import Check, Slo, judge, point_verdict
from perf.stats import Summary, in_window, summarise
from perf.target import PerfError, Target
from perf.workload import Workload

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
USER_CLASS = {
    "chat": "ChatUser",
    "generate": "GenerateUser",
    "openai-chat": "OpenAIChatUser",
    "openai-completions": "OpenAICompletionUser",
    "embed": "EmbedUser",
}


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs. ``duration_s`` includes ``warmup_s``, whose requests are discarded."""

    target: Target
    workload: Workload
    users: int
    duration_s: float
    warmup_s: float
    out: Path
    slos: Sequence[Slo] = ()
    workers: int = 0
    itl_rows: bool = True


@dataclass
class RunResult:
    spec: RunSpec
    records: list[RequestRecord]
    window: tuple[float, float]
    summary: Summary
    checks: list[Check]
    server: dict[str, Any] = field(default_factory=dict)
    locust_exit: int = 0

    @property
    def slo_passed(self) -> bool:
        return point_verdict(self.checks) == "pass" if self.checks else True


def parse_duration(text: str) -> float:
    """``60s``, ``2m``, ``1h``, ``1m30s`` or plain seconds; raises ValueError with the expected form."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    text = text.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    total, number = 0.0, ""
    for ch in text:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            total += float(number) * units[ch]
            number = ""
        else:
            raise ValueError(f"cannot read duration {text!r}; use e.g. 60s, 2m or 1m30s")
    if number or not text:
        raise ValueError(f"cannot read duration {text!r}; use e.g. 60s, 2m or 1m30s")
    return total


def workload_arguments(workload: Workload, records_dir: Path, target: str, itl_rows: bool) -> list[str]:
    """The locustfile's own options for ``workload`` (see ``perf.users.add_arguments``)."""
    args = [
        "--model", workload.model,
        "--input-words", str(workload.input_words),
        "--output-tokens", str(workload.output_tokens),
        "--seed", str(workload.seed),
        "--records-dir", str(records_dir),
        "--target-name", target,
    ]  # fmt: skip
    if not workload.stream:
        args.append("--no-stream")
    if workload.ignore_eos:
        args.append("--ignore-eos")
    if not itl_rows:
        args.append("--no-itl-rows")
    return args


def locust_commands(spec: RunSpec, records_dir: Path) -> list[list[str]]:
    """The processes of one run: the Locust process (a master when ``workers``), then its workers."""
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), USER_CLASS[spec.target.api.name]]
    own = workload_arguments(spec.workload, records_dir, spec.target.name, spec.itl_rows)
    main = [
        *base, *own, "--headless", "--only-summary",
        "-u", str(spec.users), "-r", str(spec.users), "-t", f"{spec.duration_s:g}s", "-H", spec.target.url,
        "--csv", str(spec.out / "locust"), "--html", str(spec.out / "locust.html"),
        "--exit-code-on-error", "0", "--stop-timeout", "0",
    ]  # fmt: skip
    if spec.workers <= 0:
        return [main]
    port = _free_port()
    main += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    main += ["--expect-workers", str(spec.workers), "--expect-workers-max-wait", "120"]
    worker = [*base, *own, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port), "-H", spec.target.url]
    return [main] + [worker] * spec.workers


def run(spec: RunSpec, progress: Callable[[str], None]) -> RunResult:
    """Run the load, then analyse and write everything under ``spec.out``. Raises PerfError when the server
    cannot be reached or Locust fails to run."""
    spec.out.mkdir(parents=True, exist_ok=True)
    server = spec.target.describe(spec.workload.model)
    progress(f"warming up {spec.workload.model} at {spec.target.url} ...")
    spec.target.warm_up(spec.workload)
    records_dir = spec.out / "records"
    shutil.rmtree(records_dir, ignore_errors=True)
    records_dir.mkdir()
    log = open(spec.out / "locust.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
    processes = [
        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT) for cmd in locust_commands(spec, records_dir)
    ]
    tail = RecordTail(records_dir)
    started = time.time()
    try:
        while processes[0].poll() is None:
            time.sleep(1.0)
            tail.poll()
            progress(report.live_line(tail.records, started, spec.duration_s, spec.users, spec.warmup_s))
        for worker in processes[1:]:
            worker.wait(timeout=120)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        log.close()
    tail.poll()
    code = processes[0].returncode
    if code != 0 or not tail.records:
        text = (spec.out / "locust.log").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise PerfError(f"locust exited with {code} after {len(tail.records)} requests; its log ends:\n{text}")
    result = analyse(spec, tail.records, started, server, code)
    shutil.rmtree(records_dir, ignore_errors=True)
    return result


def analyse(
    spec: RunSpec, records: list[RequestRecord], started: float, server: dict[str, Any], locust_exit: int = 0
) -> RunResult:
    """Summarise the records after the warm-up and write summary.json, report.md and requests.jsonl.gz."""
    first = min((r.t_send for r in records), default=started)
    window = (max(started, first) + spec.warmup_s, max((r.t_done for r in records), default=started))
    summary = summarise(records, *window)
    checks = judge(spec.slos, summary, in_window(records, *window)) if spec.slos else []
    result = RunResult(spec, records, window, summary, checks, server, locust_exit)
    write_records(spec.out / "requests.jsonl.gz", sorted(records, key=lambda r: r.t_send))
    (spec.out / "summary.json").write_text(json.dumps(report.run_summary(result), indent=2) + "\n", encoding="utf-8")
    (spec.out / "report.md").write_text(report.run_markdown(result), encoding="utf-8")
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


__all__ = ["PerfError", "RunResult", "RunSpec", "analyse", "parse_duration", "run"]
