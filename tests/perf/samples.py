"""Synthetic request records for the planner and statistics tests (seeded, so every run sees the same)."""

from __future__ import annotations

import random

from perf.records import RequestRecord


def records(
    n: int,
    *,
    ttft_ms: float = 100.0,
    itl_ms: float = 20.0,
    tokens: int = 16,
    errors: int = 0,
    start: float = 1000.0,
    spacing_s: float = 0.1,
    jitter: float = 0.1,
    seed: int = 0,
    users: int = 1,
) -> list[RequestRecord]:
    """``n`` requests sent ``spacing_s`` apart with TTFT and every ITL gap around the given values
    (±``jitter`` relative, uniform); the first ``errors`` of them are 503s."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t_send = start + i * spacing_s
        if i < errors:
            out.append(RequestRecord(api="chat", t_send=t_send, e2e_ms=5.0, status=503, error="HTTP 503", users=users))
            continue
        ttft = ttft_ms * (1 + rng.uniform(-jitter, jitter))
        gaps = [itl_ms * (1 + rng.uniform(-jitter, jitter)) for _ in range(tokens - 1)]
        out.append(
            RequestRecord(
                api="chat",
                t_send=t_send,
                e2e_ms=ttft + sum(gaps) + 1.0,
                status=200,
                ttft_ms=ttft,
                gaps_ms=gaps,
                output_tokens=tokens,
                tokens_from_server=True,
                prompt_id=f"p{i}",
                users=users,
            )
        )
    return out
