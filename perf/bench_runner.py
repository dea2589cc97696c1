"""What the process boundary costs: the same model served in process (``EngineModel``) and from a runner
process (``RemoteModel``, what the server uses), in one run.

Run by hand (a few minutes on 2 cores)::

    .venv/bin/python perf/bench_runner.py [--model PATH] [--threads 2] [--tokens 128] [--streams 8] [--rounds 5]

Every request generates ``--tokens`` tokens greedily with end-of-sequence ignored. Rows: single stream (the 8
prompts one after another) and N concurrent streams, aggregate tokens/s, for both sides, with the runner's
ratio to in-process (target >= 0.98x). The sides alternate for ``--rounds`` rounds, each loading its model
afresh, so neither profits from the other's caches; the best round of each side counts, and each round's
ratio is printed with their median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from perf.bench_engine import PROMPTS, Row, chatml, smollm2_path
from server.engine import EngineModel, LoadParams, SamplingParams
from server.runner import ModelRunner, RemoteModel


async def one(model: ModelRunner, prompt: str, sampling: SamplingParams) -> int:
    tokens = await asyncio.to_thread(model.tokenize, chatml(prompt))
    count = 0
    async with model.generate(tokens, sampling) as events:
        async for event in events:
            count = getattr(event, "eval_count", count)
    return count


async def serial(model: ModelRunner, sampling: SamplingParams, tag: str) -> float:
    start = time.perf_counter()
    total = 0
    for prompt in PROMPTS:
        total += await one(model, tag + prompt, sampling)
    return total / (time.perf_counter() - start)


async def concurrent(model: ModelRunner, sampling: SamplingParams, streams: int, tag: str) -> float:
    prompts = [f"{tag}{PROMPTS[i % len(PROMPTS)]} ({i})" for i in range(streams)]
    start = time.perf_counter()
    counts = await asyncio.gather(*(one(model, p, sampling) for p in prompts))
    return sum(counts) / (time.perf_counter() - start)


def measure(
    load: Callable[[LoadParams], Any], params: LoadParams, sampling: SamplingParams, streams: int, tag: str
) -> tuple[float, float]:
    model = load(params)
    try:
        asyncio.run(one(model, "warm up", SamplingParams(temperature=0, num_predict=2)))
        return asyncio.run(serial(model, sampling, tag + "s ")), asyncio.run(
            concurrent(model, sampling, streams, tag + "m ")
        )
    finally:
        model.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--num-ctx", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    params = LoadParams(
        model_path=args.model or smollm2_path(),
        num_ctx=args.num_ctx,
        num_parallel=args.streams,
        num_thread=args.threads,
    )
    sampling = SamplingParams(temperature=0, repeat_penalty=1.0, num_predict=args.tokens, ignore_eos=True)
    local: list[tuple[float, float]] = []
    remote: list[tuple[float, float]] = []
    for r in range(args.rounds):
        # Alternate which side goes first, so neither always runs on a warmer (or busier) machine.
        sides: list[tuple[Callable[[LoadParams], Any], list[tuple[float, float]], str]] = [
            (EngineModel.load, local, "l"),
            (RemoteModel.load, remote, "r"),
        ]
        for load, out, tag in sides if r % 2 == 0 else reversed(sides):
            out.append(measure(load, params, sampling, args.streams, f"[{tag}{r}] "))
    rows = [
        Row(
            "single stream tokens/s, runner vs in process", max(x[0] for x in remote), "tok/s", max(x[0] for x in local)
        ),
        Row(
            f"{args.streams} streams tokens/s, runner vs in process",
            max(x[1] for x in remote),
            "tok/s",
            max(x[1] for x in local),
        ),
    ]
    single = [r[0] / x[0] for r, x in zip(remote, local, strict=True)]
    multi = [r[1] / x[1] for r, x in zip(remote, local, strict=True)]
    print(
        f"\n{Path(params.model_path).name}, {args.threads} threads, {args.tokens} tokens/request,",
        f"best of {args.rounds} rounds",
    )
    print(
        "rounds (tok/s): in process",
        [tuple(round(v) for v in x) for x in local],
        "runner",
        [tuple(round(v) for v in x) for x in remote],
    )
    print(
        f"ratios per round: single {[round(v, 3) for v in single]} median {statistics.median(single):.3f}x;"
        f" {args.streams} streams {[round(v, 3) for v in multi]} median {statistics.median(multi):.3f}x"
    )
    print(f"| {'measure':<44} | {'runner':>10} | {'in proc.':>10} | ratio | unit   |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 12}|-------|--------|")
    for row in rows:
        print(row.render())


if __name__ == "__main__":
    main()
