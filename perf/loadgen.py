"""One measured load level, run by the capacity search as a child process (it imports Locust).

``python -m perf.loadgen --url URL --api chat --users 8 --out level.json [workload options]`` starts ``users``
closed-loop streams with Locust's programmatic runner, warms up for max(``--warmup``, 1.5 × the E2E p50 of
the requests finished so far), then holds until at least ``--min-requests`` requests sent in the hold have
finished and ``--min-hold`` seconds have passed (at most ``--max-hold``). It prints one JSON progress object
per second on stdout and finally writes the hold window, every record and the load generator's own CPU use
(mean % of one core over the hold, and whether Locust's CPU warning fired) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust.env import Environment

from perf.recorder import Recorder
from perf.users import USER_CLASSES, add_arguments


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m perf.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--api", default="chat", choices=sorted(USER_CLASSES))
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--min-hold", type=float, default=20.0)
    parser.add_argument("--max-hold", type=float, default=60.0)
    parser.add_argument("--min-requests", type=int, default=100)
    parser.add_argument("--out", required=True)
    add_arguments(parser)
    return parser


def _progress(phase: str, records: list[dict[str, Any]], since: float, users: int) -> None:
    done = [r for r in records if r["t_send"] >= since]
    ok = [r for r in done if r["error"] is None]
    ttft = sorted(r["ttft_ms"] for r in ok if r["ttft_ms"] is not None)
    gaps = sorted(g for r in ok for g in r["gaps_ms"])
    line = {
        "phase": phase,
        "users": users,
        "requests": len(done),
        "errors": len(done) - len(ok),
        "ttft_p95": ttft[int(0.95 * (len(ttft) - 1))] if ttft else None,
        "itl_p95": gaps[int(0.95 * (len(gaps) - 1))] if gaps else None,
    }
    print(json.dumps(line), flush=True)


def measure(options: argparse.Namespace) -> dict[str, Any]:
    user_class = USER_CLASSES[options.api]
    options.num_users = options.users
    environment = Environment(user_classes=[user_class], host=options.url, parsed_options=options)
    recorder = Recorder()
    environment.events.request.add_listener(recorder.on_request)
    runner = environment.create_local_runner()
    process = psutil.Process()
    start = time.time()
    runner.start(options.users, spawn_rate=options.users)
    while True:  # warm-up
        gevent.sleep(1.0)
        elapsed = time.time() - start
        e2e = [r["e2e_ms"] for r in recorder.records]
        _progress("warm-up", recorder.records, start, options.users)
        if elapsed >= options.warmup and e2e and elapsed >= 1.5 * statistics.median(e2e) / 1000:
            break
        if elapsed > options.warmup + options.max_hold:
            break
    hold_start, cpu_start = time.time(), sum(process.cpu_times()[:2])
    runner.cpu_warning_emitted = False
    while True:
        gevent.sleep(1.0)
        now = time.time()
        finished = sum(1 for r in recorder.records if r["t_send"] >= hold_start)
        _progress("hold", recorder.records, hold_start, options.users)
        if now - hold_start >= options.max_hold:
            break
        if now - hold_start >= options.min_hold and finished >= options.min_requests:
            break
    hold_end, cpu_end = time.time(), sum(process.cpu_times()[:2])
    warning = runner.cpu_warning_emitted
    runner.quit()
    # Everything that finished in the hold: throughput counts them all, latency only those also sent in it.
    records = [r for r in recorder.records if hold_start <= r["t_send"] + r["e2e_ms"] / 1000 <= hold_end]
    for r in records:
        r["repeat"] = options.repeat
    return {
        "users": options.users,
        "repeat": options.repeat,
        "window": [hold_start, hold_end],
        "client_cpu_pct": 100 * (cpu_end - cpu_start) / max(hold_end - hold_start, 1e-9),
        "client_cpu_warning": warning,
        "records": records,
    }


def main() -> int:
    options = _parser().parse_args()
    result = measure(options)
    Path(options.out).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
