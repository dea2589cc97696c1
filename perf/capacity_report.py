"""What ``corral perf capacity`` writes: capacity.json, the plots and report.md (no Locust here)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from perf.planner import (
    ValidationLoad,
    binding,
    first_fail_reason,
    knee,
    level_table,
    stack_snippet,
    target_concurrency,
)
from perf.plots import capacity_plot, tradeoff_plot
from perf.report import DEFINITIONS, fmt, markdown_table

if TYPE_CHECKING:
    from perf.capacity import CapacityResult


def summary(result: CapacityResult) -> dict[str, Any]:
    """The content of capacity.json."""
    search, spec = result.search, result.spec
    rows = level_table(search)
    closest, margins = binding(search)
    # The SLO that binds is the one that broke at the first failing level; without one, the closest to its limit.
    bound = first_fail_reason(search) or closest
    k = knee([r["users"] for r in rows], [r["out_tok_s"] for r in rows])
    return {
        "max_users_per_replica": search.max_users,
        "first_fail": search.first_fail,
        "first_fail_slo": first_fail_reason(search),
        "bracketed": search.bracketed,
        "monotonic": search.monotonic,
        "binding_slo": bound,
        "margins_at_max": margins,
        "knee": {"users": k.users, "reason": k.reason, "rising_slope": k.rising_slope, "tail_slope": k.tail_slope},
        "at_max": None if result.point is None else {
            "out_tok_s": result.point.out_tok_s, "req_s": result.point.req_s, "e2e_p50_ms": result.point.e2e_p50_ms,
        },
        "headroom": spec.headroom,
        "plans": [p.to_dict() for p in result.plans],
        "measurements": len(search.order),
        "levels": rows,
        "duration_s": result.run["finished"] - result.run["started"],
    }  # fmt: skip


def write(result: CapacityResult) -> dict[str, Any]:
    """Write run.json, capacity.json, capacity.png, tradeoff.png, report.md (and the stack snippet)."""
    out, spec = result.spec.out, result.spec
    data = summary(result)
    (out / "run.json").write_text(json.dumps(result.run, indent=2) + "\n", encoding="utf-8")
    (out / "capacity.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    limits = {s.name: s.limit for s in spec.slos}
    title = f"{spec.workload.model} at {spec.server.url}"
    if data["levels"]:
        capacity_plot(out / "capacity.png", data["levels"], result.search, limits, data["knee"]["users"], title)
        tradeoff_plot(out / "tradeoff.png", data["levels"], title)
    if spec.stack and result.plans:
        replicas = max(p.replicas for p in result.plans)
        load = _validation_load(result)
        (out / f"Pulumi.{spec.stack}.snippet.yaml").write_text(
            stack_snippet(spec.stack, replicas, spec.num_parallel, load), encoding="utf-8"
        )
    (out / "report.md").write_text(markdown(result, data), encoding="utf-8")
    return data


def _validation_load(result: CapacityResult) -> ValidationLoad | None:
    """The in-cluster run at the largest concurrency any target asks for, with the search's workload."""
    if result.point is None:
        return None
    spec, point = result.spec, result.point
    return ValidationLoad(
        model=spec.workload.model,
        users=max(target_concurrency(p, point) for p in result.plans),
        api=spec.server.api.name,
        input_words=spec.workload.input_words,
        output_tokens=spec.workload.output_tokens,
        slos=spec.slos,
    )


def level_rows(data: dict[str, Any]) -> list[list[str]]:
    return [
        [str(r["users"]), str(r["repeats"]), f"{r['out_tok_s']:.1f}", f"{r['req_s']:.2f}", fmt(r["ttft_p95"]),
         fmt(r["itl_p95"], 1), fmt(r["tpot_p50"], 1), f"{r['error_rate']:.1%}", r["verdict"]]
        for r in data["levels"]
    ]  # fmt: skip


LEVEL_HEADERS = ["users", "runs", "tok/s", "req/s", "TTFT p95 ms", "ITL p95 ms", "TPOT p50 ms", "errors", "verdict"]


def verdict_line(data: dict[str, Any]) -> str:
    text = f"**Max users per replica: {data['max_users_per_replica']}**"
    if data["binding_slo"]:
        text += f" (binding SLO: {data['binding_slo']}"
        if data["first_fail"] is not None and data["first_fail_slo"]:
            text += f", broken at {data['first_fail']} users"
        text += ")"
    if not data["bracketed"]:
        text += "; every level up to the search's maximum passed"
    if not data["monotonic"]:
        text += "; the verdict was not monotonic in users, so the lowest failing level − 1 is reported"
    return text + "."


def markdown(result: CapacityResult, data: dict[str, Any]) -> str:
    spec = result.spec
    w = spec.workload
    parts = [
        f"# Capacity: {w.model} at {spec.server.url} ({spec.server.api.name})\n",
        f"SLOs: {', '.join(s.label for s in spec.slos)}. Workload: {w.input_words} filler words per prompt "
        f"(unique prefixes), {w.output_tokens} output tokens asked, closed loop; num_parallel "
        f"{spec.num_parallel or 'not given'}. {data['measurements']} measurements in {data['duration_s']:.0f} s.\n",
        DEFINITIONS,
        "## Result\n",
        verdict_line(data) + "\n",
        markdown_table(["SLO", "margin at max"], [[k, f"{v:.0%}"] for k, v in data["margins_at_max"].items()]),
        f"\nKnee (two-segment fit of tok/s against users): "
        f"{data['knee']['users'] if data['knee']['users'] is not None else 'none'} ({data['knee']['reason']}).\n",
        "## Levels (medians over repeats)\n",
        markdown_table(LEVEL_HEADERS, level_rows(data)),
        "\n![capacity](capacity.png)\n\n![trade-off](tradeoff.png)\n",
    ]
    if result.plans:
        rows = [
            [f"{p.target.kind}={p.target.value:g}", f"{p.headroom:.0%}", str(p.replicas_for_load), str(p.replicas)]
            for p in result.plans
        ]
        parts += ["## Replicas\n", markdown_table(["target", "headroom", "for the load", "with +1 spare"], rows)]
    return "\n".join(parts)
