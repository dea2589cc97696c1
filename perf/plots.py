"""The capacity plots (matplotlib, Agg backend, PNG):

- ``capacity.png``: three panels against concurrent users: output tok/s (knee marked), TTFT p50/p95/p99 and
  ITL p50/p95/p99 (TPOT p50 dashed) with the SLO limits as red lines and max users as a green line; the
  spread of the repeats is drawn as error bars on the p95s;
- ``tradeoff.png``: output tok/s against TTFT p95, and per-user tok/s against system tok/s, one point per
  level labelled with its users.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from perf.search import SearchResult


def _spread(result: SearchResult, users: int, metric: str) -> tuple[float, float]:
    values = [
        v
        for m in result.levels.get(users, [])
        if m.verdict != "invalid" and (v := m.summary.metric(metric).p95) is not None
    ]
    return (min(values), max(values)) if values else (0.0, 0.0)


def capacity_plot(
    path: Path,
    rows: Sequence[dict[str, Any]],
    result: SearchResult,
    limits: dict[str, float],
    knee_users: float | None,
    title: str,
) -> None:
    users = [r["users"] for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(8, 10), sharex=True)
    axes[0].plot(users, [r["out_tok_s"] for r in rows], "o-", color="tab:blue")
    axes[0].set_ylabel("output tok/s")
    if knee_users is not None:
        axes[0].axvline(knee_users, color="grey", linestyle=":", label=f"knee ≈ {knee_users:g}")
        axes[0].legend(loc="lower right")
    for ax, metric, label in ((axes[1], "ttft", "TTFT (ms)"), (axes[2], "itl", "ITL (ms)")):
        for pct, style in ((50, "o-"), (95, "s-"), (99, "^-")):
            ax.plot(users, [r[f"{metric}_p{pct}"] for r in rows], style, label=f"p{pct}")
        spread = [_spread(result, u, metric) for u in users]
        p95 = [r[f"{metric}_p95"] or 0.0 for r in rows]
        ax.errorbar(
            users,
            p95,
            yerr=[[max(0.0, p - lo) for p, (lo, _) in zip(p95, spread, strict=True)],
                  [max(0.0, hi - p) for p, (_, hi) in zip(p95, spread, strict=True)]],
            fmt="none", ecolor="black", capsize=3,
        )  # fmt: skip
        if metric == "itl":
            ax.plot(users, [r["tpot_p50"] for r in rows], "--", color="grey", label="TPOT p50")
        if (limit := limits.get(f"{metric}_p95")) is not None:
            ax.axhline(limit, color="red", label=f"SLO p95 ≤ {limit:g} ms")
        ax.set_ylabel(label)
        ax.legend(loc="upper left", fontsize="small")
    for ax in axes:
        if result.max_users:
            ax.axvline(result.max_users, color="green", linestyle="--")
        ax.grid(alpha=0.3)
    if len(users) > 1 and max(users) / max(min(users), 1) >= 8:
        axes[2].set_xscale("log", base=2)
    axes[2].set_xticks(users, [str(u) for u in users])
    axes[2].set_xlabel(f"concurrent users (max users per replica = {result.max_users}, green)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def tradeoff_plot(path: Path, rows: Sequence[dict[str, Any]], title: str) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for r in rows:
        if r["ttft_p95"] is not None:
            left.plot(r["ttft_p95"], r["out_tok_s"], "o", color="tab:blue")
            left.annotate(str(r["users"]), (r["ttft_p95"], r["out_tok_s"]), textcoords="offset points", xytext=(4, 4))
        if r["per_user_tok_s"] is not None:
            right.plot(r["out_tok_s"], r["per_user_tok_s"], "o", color="tab:orange")
            right.annotate(str(r["users"]), (r["out_tok_s"], r["per_user_tok_s"]), textcoords="offset points",
                           xytext=(4, 4))  # fmt: skip
    left.set_xlabel("TTFT p95 (ms)")
    left.set_ylabel("output tok/s (system)")
    right.set_xlabel("output tok/s (system)")
    right.set_ylabel("tok/s per user (1000 / TPOT p50)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
