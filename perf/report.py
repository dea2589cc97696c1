"""What a run writes and shows: the live progress line, ``summary.json`` and ``report.md``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from perf.records import RequestRecord
from perf.slo import Check
from perf.stats import Distribution, Summary

if TYPE_CHECKING:
    from perf.run import RunResult

DEFINITIONS = """\
Metric definitions (vLLM's `bench serve`):

- **TTFT**: send → first chunk with non-empty content (or thinking) text.
- **ITL**: every gap between consecutive content chunks, pooled over requests (vLLM's ITL, AIPerf's ICL).
- **TPOT**: (t_last − t_first) / (output tokens − 1) per request.
- **E2E**: send → the final object (`"done": true`) or `[DONE]`.
- **Output tokens**: the server's `eval_count` / `usage.completion_tokens`; tok/s = tokens of requests that
  finished in the window ÷ window.
- **Error**: non-2xx (e.g. 503 from a full queue), timeout, connection error, an error object in the stream,
  or a stream that ends without its final object / `[DONE]`. Error rate = errors ÷ requests in the window.
- Requests sent during the warm-up are discarded; percentiles come from raw samples, not Locust's buckets.
"""


def live_line(records: Sequence[RequestRecord], started: float, duration_s: float, users: int, warmup_s: float) -> str:
    """One status line while a run goes: elapsed, requests, errors, current p95s and tok/s (last 10 s)."""
    now = time.time()
    recent = [r for r in records if r.t_done >= now - 10 and r.ok]
    measured = [r for r in records if r.t_send >= started + warmup_s]
    ok = [r for r in measured if r.ok]
    ttft = [r.ttft_ms for r in ok if r.ttft_ms is not None]
    gaps = [g for r in ok for g in r.gaps_ms]
    phase = "warm-up" if now < started + warmup_s else "measuring"
    return (
        f"[{now - started:4.0f}s/{duration_s:g}s] {phase}  {users} users  {len(records)} requests  "
        f"{sum(1 for r in records if not r.ok)} errors  TTFT p95 {_p95(ttft)}  ITL p95 {_p95(gaps)}  "
        f"{sum(r.output_tokens for r in recent) / 10:.0f} tok/s"
    )


def _p95(values: Sequence[float]) -> str:
    return f"{float(np.percentile(values, 95)):.0f} ms" if values else "-"


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def distribution_rows(summary: Summary) -> list[list[str]]:
    rows = []
    for name in ("ttft", "itl", "tpot", "e2e"):
        d: Distribution = summary.metric(name)
        rows.append(
            [name.upper(), str(d.count), fmt(d.mean, 1), fmt(d.p50, 1), fmt(d.p90, 1), fmt(d.p95, 1), fmt(d.p99, 1)]
        )
    return rows


def check_dict(check: Check) -> dict[str, Any]:
    return {
        "slo": check.slo.name,
        "label": check.slo.label,
        "limit": check.slo.limit,
        "value": check.value,
        "interval95": list(check.interval) if check.interval else None,
        "verdict": check.verdict,
        "point_pass": check.value is not None and check.value <= check.slo.limit,
    }


def run_summary(result: RunResult) -> dict[str, Any]:
    spec = result.spec
    return {
        "definitions": DEFINITIONS,
        "target": {"name": spec.target.name, "url": spec.target.url, "api": spec.target.api.name},
        "server": result.server,
        "workload": spec.workload.describe(),
        "users": spec.users,
        "workers": spec.workers,
        "duration_s": spec.duration_s,
        "warmup_s": spec.warmup_s,
        "window": list(result.window),
        "summary": result.summary.to_dict(),
        "slo": [check_dict(c) for c in result.checks],
        "slo_passed": result.slo_passed,
    }


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" ---: " for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def run_markdown(result: RunResult) -> str:
    spec, s = result.spec, result.summary
    w = spec.workload
    parts = [
        f"# Load run: {spec.users} users against {spec.target.url} ({spec.target.api.name})\n",
        f"Model `{w.model}`, {w.input_words} filler words per prompt (unique prefixes), {w.output_tokens} output "
        f"tokens asked, {'streamed' if w.stream else 'not streamed'}, seed {w.seed}; {spec.duration_s:g} s with "
        f"{spec.warmup_s:g} s warm-up discarded; {spec.workers or 'no'} Locust workers.\n",
        DEFINITIONS,
        "## Throughput\n",
        markdown_table(
            ["requests", "errors", "error rate", "req/s", "output tok/s", "output tokens"],
            [
                [
                    str(s.requests),
                    str(s.errors),
                    f"{s.error_rate:.2%}",
                    f"{s.req_s:.2f}",
                    f"{s.out_tok_s:.1f}",
                    str(s.output_tokens),
                ]
            ],
        ),
        "## Latency (ms)\n",
        markdown_table(["metric", "samples", "mean", "p50", "p90", "p95", "p99"], distribution_rows(s)),
    ]
    if s.errors_by_reason:
        parts += [
            "## Errors\n",
            markdown_table(["error", "count"], [[k, str(v)] for k, v in s.errors_by_reason.items()]),
        ]
    if result.checks:
        rows = [
            [c.slo.label, fmt(c.value, 3 if c.slo.percentile is None else 1),
             "-" if c.interval is None else f"{c.interval[0]:.1f}–{c.interval[1]:.1f}",
             "pass" if c.value is not None and c.value <= c.slo.limit else "FAIL"]
            for c in result.checks
        ]  # fmt: skip
        parts += ["## SLOs\n", markdown_table(["SLO", "measured", "95% CI", "verdict"], rows)]
        parts.append(f"\n**{'All SLOs hold.' if result.slo_passed else 'SLO broken.'}**\n")
    return "\n".join(parts)
