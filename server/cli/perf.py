"""``corral perf``: load tests and capacity planning (``perf/``) from the command line.

``perf run`` is one headless Locust run with SLO thresholds; exit codes: 0 all SLOs hold, 3 an SLO is broken,
1 the run could not be made (server unreachable, Locust failed), 2 bad arguments. Locust itself runs in child
processes; this module never imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from server.cli.display import Progress, table

if TYPE_CHECKING:
    from perf.workload import Workload

SLO_BROKEN = 3


def add_parsers(sub: Any) -> None:
    """Register ``perf`` and its commands on the ``corral`` parser."""
    p = sub.add_parser("perf", help="Load tests and capacity planning (Locust)")
    perf_sub = p.add_subparsers(title="perf commands", metavar="COMMAND", required=True)
    r = perf_sub.add_parser("run", help="One headless load run with SLO thresholds (exit 3 when one breaks)")
    _target_options(r)
    _workload_options(r)
    r.add_argument("--users", type=int, default=4, help="concurrent streams (closed loop) (default: 4)")
    r.add_argument("--duration", default="60s", help="total run time, warm-up included (default: 60s)")
    r.add_argument("--warmup", default="5s", help="discarded start of the run (default: 5s)")
    r.add_argument("--workers", type=int, default=0, help="Locust master + N local worker processes (default: 0)")
    r.add_argument("--out", help="output folder (default: perf/out/<run-id>)")
    r.add_argument("--no-itl-rows", action="store_true", help="no per-gap ITL rows in Locust's tables (less CPU)")
    r.set_defaults(handler=perf_run)
    c = perf_sub.add_parser("capacity", help="Max users per replica within the SLOs, and replicas for a target")
    _target_options(c)
    _workload_options(c, input_words=64, output_tokens=32)
    c.add_argument("--target", action="append", default=[], help="load to plan for: users=N, rps=N or tokens=N")
    c.add_argument("--headroom", type=float, default=0.25, help="capacity kept free (default: 0.25)")
    c.add_argument("--stack", help="write the settings for stacks/Pulumi.STACK.yaml")
    c.add_argument("--num-parallel", type=int, help="the server's OLLAMA_NUM_PARALLEL (recorded; caps the search)")
    c.add_argument("--max-users", type=int, help="highest level tried (default: 2 x --num-parallel, else 64)")
    c.add_argument("--repeats", type=int, default=3, help="measurements of the final bracket's levels (default: 3)")
    c.add_argument("--warmup", default="5s", help="least warm-up per level (default: 5s)")
    c.add_argument("--min-hold", default="20s", help="least measured time per level (default: 20s)")
    c.add_argument("--max-hold", default="60s", help="most measured time per level (default: 60s)")
    c.add_argument("--min-requests", type=int, default=100, help="least requests per level (default: 100)")
    c.add_argument("--out", help="output folder (default: perf/out/<run-id>)")
    c.set_defaults(handler=perf_capacity)
    m = perf_sub.add_parser("compare", help="The same workload against several servers, side by side")
    m.add_argument("--target", action="append", default=[], help="NAME=[native@|openai@]URL[#MODEL], repeatable")
    m.add_argument("--model", help="model name for targets without #MODEL")
    _workload_options(m, input_words=64, output_tokens=64)
    m.add_argument("--users", default="1,8", help="comma-separated concurrency levels (default: 1,8)")
    m.add_argument("--duration", default="30s", help="measured time per level and target (default: 30s)")
    m.add_argument("--warmup", default="5s", help="discarded start of each level (default: 5s)")
    m.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default: 2)")
    m.add_argument("--merge", nargs="+", metavar="COMPARE_JSON", help="only combine earlier runs' compare.json")
    m.add_argument("--out", help="output folder (default: perf/out/<run-id>)")
    m.set_defaults(handler=perf_compare)


def _target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="http://127.0.0.1:11434", help="server base URL (default: %(default)s)")
    p.add_argument("--model", required=True, help="model name to request")
    p.add_argument("--dialect", choices=["native", "openai"], default="native", help="chat endpoint (default: native)")
    p.add_argument(
        "--api",
        choices=["chat", "generate", "openai-chat", "openai-completions", "embed"],
        help="endpoint, overrides --dialect",
    )
    p.add_argument("--slo", default="", help="thresholds, e.g. ttft_p95=1000ms,itl_p95=100ms,errors=1%%")


def _workload(args: argparse.Namespace) -> Workload:
    from perf.workload import Workload

    return Workload(args.model, args.input_words, args.output_tokens, args.seed, not args.no_stream, args.ignore_eos)


def _workload_options(p: argparse.ArgumentParser, input_words: int = 128, output_tokens: int = 64) -> None:
    p.add_argument(
        "--input-words",
        type=int,
        default=input_words,
        help="filler words per prompt, ~1 token each (default: %(default)s)",
    )
    p.add_argument(
        "--output-tokens", type=int, default=output_tokens, help="num_predict / max_tokens (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="prompt and sampling seed (default: 0)")
    p.add_argument("--no-stream", action="store_true", help="whole responses instead of streams")
    p.add_argument("--ignore-eos", action="store_true", help="send ignore_eos (servers that honour it)")


def _default_out(kind: str) -> Path:
    from datetime import UTC, datetime

    return Path("perf") / "out" / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{kind}"


def perf_run(client: object, args: argparse.Namespace, out: TextIO) -> int:
    """``corral perf run``: the client argument (the CLI's HTTP client) is unused: Locust does the talking."""
    from perf.apis import api_named
    from perf.run import RunSpec, parse_duration, run
    from perf.slo import SloError, parse_slos
    from perf.target import PerfError, Target

    try:
        slos = parse_slos(args.slo) if args.slo else []
        duration, warmup = parse_duration(args.duration), parse_duration(args.warmup)
        if warmup >= duration:
            raise ValueError(f"--warmup {args.warmup} leaves nothing of --duration {args.duration} to measure")
        if args.users < 1:
            raise ValueError("--users must be at least 1")
        api = api_named(args.api or args.dialect)
    except (SloError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    workload = _workload(args)
    spec = RunSpec(
        target=Target("target", args.url.rstrip("/"), api),
        workload=workload,
        users=args.users,
        duration_s=duration,
        warmup_s=warmup,
        out=Path(args.out) if args.out else _default_out("run"),
        slos=slos,
        workers=args.workers,
        itl_rows=not args.no_itl_rows,
    )
    progress = Progress()
    try:
        result = run(spec, progress.status)
    except PerfError as exc:
        progress.done()
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    progress.done()
    s = result.summary
    out.write(
        f"{s.requests} requests, {s.errors} errors ({s.error_rate:.2%}), {s.req_s:.2f} req/s, "
        f"{s.out_tok_s:.1f} output tok/s\n"
    )
    from perf.report import distribution_rows

    table(["METRIC", "SAMPLES", "MEAN", "P50", "P90", "P95", "P99"], distribution_rows(s), out)
    for check in result.checks:
        ok = check.value is not None and check.value <= check.slo.limit
        out.write(f"SLO {check.slo.label}: {'pass' if ok else 'BROKEN'} (measured {check.value})\n")
    out.write(f"report: {spec.out / 'report.md'}\n")
    return 0 if result.slo_passed else SLO_BROKEN


def perf_capacity(client: object, args: argparse.Namespace, out: TextIO) -> int:
    """``corral perf capacity``: the search, the plan and the files; exit 1 when it cannot be finished."""
    from perf import capacity_report
    from perf.apis import api_named
    from perf.capacity import CapacitySpec, Hold, run_capacity
    from perf.planner import PlanError, Target
    from perf.run import parse_duration
    from perf.search import ClientBound
    from perf.slo import DEFAULT_SLOS, SloError, parse_slos
    from perf.target import PerfError
    from perf.target import Target as Server

    try:
        slos = parse_slos(args.slo or DEFAULT_SLOS)
        targets = [Target.parse(t) for t in args.target]
        if not 0 <= args.headroom < 1:
            raise ValueError(f"--headroom must be in [0, 1), got {args.headroom}")
        if args.stack and not targets:
            raise ValueError("--stack needs at least one --target to size the stack for")
        max_users = args.max_users or (2 * args.num_parallel if args.num_parallel else 64)
        spec = CapacitySpec(
            server=Server("target", args.url.rstrip("/"), api_named(args.api or args.dialect)),
            workload=_workload(args),
            slos=slos,
            out=Path(args.out) if args.out else _default_out("capacity"),
            max_users=max_users,
            repeats=args.repeats,
            hold=Hold(
                parse_duration(args.warmup),
                parse_duration(args.min_hold),
                parse_duration(args.max_hold),
                args.min_requests,
            ),
            headroom=args.headroom,
            targets=targets,
            stack=args.stack,
            num_parallel=args.num_parallel,
        )
    except (SloError, PlanError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    progress = Progress()
    try:
        result = run_capacity(spec, progress.status)
    except (PerfError, ClientBound) as exc:
        progress.done()
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    progress.done()
    data = capacity_report.summary(result)
    table([h.upper() for h in capacity_report.LEVEL_HEADERS], capacity_report.level_rows(data), out)
    out.write(capacity_report.verdict_line(data).replace("**", "") + "\n")
    for p in result.plans:
        out.write(
            f"target {p.target.kind}={p.target.value:g}: {p.replicas} replicas "
            f"({p.replicas_for_load} for the load at {p.headroom:.0%} headroom, +1 for rollouts)\n"
        )
    if spec.stack and result.plans:
        out.write(f"stack settings: {spec.out / f'Pulumi.{spec.stack}.snippet.yaml'}\n")
    out.write(f"report: {spec.out / 'report.md'}\n")
    return 0


def perf_compare(client: object, args: argparse.Namespace, out: TextIO) -> int:
    """``corral perf compare``: measure the targets round-robin (or ``--merge`` earlier runs) and print the table."""
    from perf import compare
    from perf.capacity import Hold
    from perf.run import parse_duration
    from perf.target import PerfError

    try:
        if args.merge:
            data = compare.merge([Path(p) for p in args.merge])
            if args.out:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                (Path(args.out) / "compare.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
                (Path(args.out) / "compare.md").write_text(compare.markdown(data), encoding="utf-8")
        else:
            targets = [compare.parse_target(t) for t in args.target]
            if not targets:
                raise ValueError("give at least one --target NAME=[native@|openai@]URL[#MODEL]")
            if not args.model and any(t.model is None for t in targets):
                raise ValueError("give --model, or #MODEL on every --target")
            levels = [int(u) for u in args.users.split(",") if u.strip()]
            if not levels or min(levels) < 1:
                raise ValueError("--users takes positive integers, e.g. 1,8")
            duration = parse_duration(args.duration)
            hold = Hold(parse_duration(args.warmup), duration, duration, 0, max_client_cpu=101.0)
            args.model = args.model or targets[0].model
            progress = Progress()
            try:
                data = compare.run_compare(
                    targets, _workload(args), levels, args.rounds, hold,
                    Path(args.out) if args.out else _default_out("compare"), progress.status,
                )  # fmt: skip
            finally:
                progress.done()
    except (compare.CompareError, ValueError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except PerfError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    table([h.upper() for h in compare.HEADERS], compare.table_rows(data), out)
    return 0
