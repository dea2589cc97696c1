"""What the process boundary costs: the same model served in process (``EngineModel``) and from a runner
process (``RemoteModel``, what the server uses), in one run.

Run by hand (a few minutes on 2 cores)::

    .venv/bin/python perf/bench_runner.py [--model PATH] [--threads 2] [--tokens 128] [--streams 8] [--rounds 5]

Every request generates ``--tokens`` tokens greedily with end-of-sequence ignored. Rows: single stream (the 8
prompts one after another) and N concurrent streams, aggregate tokens/s, for both sides, with the runner's
ratio to in-process (target >= 0.98x). The sides alternate for ``--rounds`` rounds, each loading its model
afresh, so neither profits from the other's caches; the best round of each side counts, and each round's
ratio is printed with their median; the verdict line is the ratio of the sides' median tokens/s over the rounds
with a bootstrap interval (how fast llama.cpp runs varies from one load to the next, so use ``--rounds 12`` or
more for a verdict).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf.bench_engine import PROMPTS, Row, chatml, smollm2_path
from server.engine import EngineModel, LoadParams, SamplingParams, Token
from server.runner import ModelRunner, RemoteModel


async def one(model: ModelRunner, prompt: str, sampling: SamplingParams, on_token: Callable[[], None]) -> int:
    tokens = await asyncio.to_thread(model.tokenize, chatml(prompt))
    count = 0
    async with model.generate(tokens, sampling) as events:
        async for event in events:
            if isinstance(event, Token):
                on_token()
            else:
                count = event.eval_count
    return count


async def serial(model: ModelRunner, sampling: SamplingParams, tag: str, on_token: Callable[[], None]) -> float:
    start = time.perf_counter()
    total = 0
    for prompt in PROMPTS:
        total += await one(model, tag + prompt, sampling, on_token)
    return total / (time.perf_counter() - start)


async def concurrent(
    model: ModelRunner, sampling: SamplingParams, streams: int, tag: str, on_token: Callable[[], None]
) -> float:
    prompts = [f"{tag}{PROMPTS[i % len(PROMPTS)]} ({i})" for i in range(streams)]
    start = time.perf_counter()
    counts = await asyncio.gather(*(one(model, p, sampling, on_token) for p in prompts))
    return sum(counts) / (time.perf_counter() - start)


@dataclass(frozen=True)
class Side:
    """One way of serving the model: ``load`` builds it, ``on_token`` runs for every token event received."""

    name: str
    load: Callable[[LoadParams], Any]
    on_token: Callable[[], None] = lambda: None


def measure(side: Side, params: LoadParams, sampling: SamplingParams, streams: int, tag: str) -> tuple[float, float]:
    model = side.load(params)
    try:
        asyncio.run(one(model, "warm up", SamplingParams(temperature=0, num_predict=2), side.on_token))
        return asyncio.run(serial(model, sampling, tag + "s ", side.on_token)), asyncio.run(
            concurrent(model, sampling, streams, tag + "m ", side.on_token)
        )
    finally:
        model.close()


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--num-ctx", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args()


def side_by_side(args: argparse.Namespace, measured: Side, baseline: Side) -> None:
    """Alternate the two sides for ``args.rounds`` rounds (each loads its model afresh) and print the table: the
    best round of each side, and every round's ratio with their median."""
    params = LoadParams(
        model_path=args.model or smollm2_path(),
        num_ctx=args.num_ctx,
        num_parallel=args.streams,
        num_thread=args.threads,
    )
    sampling = SamplingParams(temperature=0, repeat_penalty=1.0, num_predict=args.tokens, ignore_eos=True)
    results: dict[str, list[tuple[float, float]]] = {measured.name: [], baseline.name: []}
    for r in range(args.rounds):
        # Alternate which side goes first, so neither always runs on a warmer (or busier) machine.
        sides = [measured, baseline] if r % 2 == 0 else [baseline, measured]
        for side in sides:
            results[side.name].append(measure(side, params, sampling, args.streams, f"[{side.name[0]}{r}] "))
            one_stream, many = results[side.name][-1]
            print(
                f"round {r}: {side.name}: {one_stream:.1f} tok/s single, {many:.1f} tok/s {args.streams} streams",
                flush=True,
            )
    ours, base = results[measured.name], results[baseline.name]
    rows = [
        Row("single stream tokens/s", max(x[0] for x in ours), "tok/s", max(x[0] for x in base)),
        Row(f"{args.streams} streams tokens/s", max(x[1] for x in ours), "tok/s", max(x[1] for x in base)),
    ]
    single = [o[0] / b[0] for o, b in zip(ours, base, strict=True)]
    multi = [o[1] / b[1] for o, b in zip(ours, base, strict=True)]
    print(
        f"\n{Path(params.model_path).name}, {args.threads} threads, {args.tokens} tokens/request,",
        f"best of {args.rounds} rounds",
    )
    print(
        f"rounds (tok/s): {baseline.name}",
        [tuple(round(v) for v in x) for x in base],
        measured.name,
        [tuple(round(v) for v in x) for x in ours],
    )
    print(
        f"ratios per round: single {[round(v, 3) for v in single]} median {statistics.median(single):.3f}x;"
        f" {args.streams} streams {[round(v, 3) for v in multi]} median {statistics.median(multi):.3f}x"
    )
    for label, index in (("single", 0), (f"{args.streams} streams", 1)):
        mine, theirs = [x[index] for x in ours], [x[index] for x in base]
        ratio, low, high = ratio_of_medians(mine, theirs)
        print(
            f"{label}: median {statistics.median(mine):.1f} vs {statistics.median(theirs):.1f} tok/s = {ratio:.3f}x"
            f" (90% bootstrap interval {low:.3f}x to {high:.3f}x)"
        )
    print(f"| {'measure':<44} | {measured.name[:10]:>10} | {baseline.name[:10]:>10} | ratio | unit   |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 12}|-------|--------|")
    for row in rows:
        print(row.render())


def ratio_of_medians(
    ours: list[float], base: list[float], *, resamples: int = 4000, seed: int = 0
) -> tuple[float, float, float]:
    """The ratio of the two sides' median tokens/s and a 90% percentile-bootstrap interval of it, resampling
    each side's rounds on its own. Each round is a fresh load, and how fast llama.cpp runs differs from one load
    to the next more than within one, so the rounds, not the tokens, are the samples."""
    rng = np.random.default_rng(seed)
    mine, theirs = np.asarray(ours), np.asarray(base)
    picks_mine = np.median(mine[rng.integers(0, mine.size, size=(resamples, mine.size))], axis=1)
    picks_theirs = np.median(theirs[rng.integers(0, theirs.size, size=(resamples, theirs.size))], axis=1)
    low, high = np.quantile(picks_mine / picks_theirs, [0.05, 0.95])
    return float(np.median(mine) / np.median(theirs)), float(low), float(high)


def main() -> None:
    args = arguments(__doc__.split("\n")[0])
    side_by_side(args, Side("runner", RemoteModel.load), Side("in process", EngineModel.load))


if __name__ == "__main__":
    main()
