"""The decode loop: cancellation, the waiting queue, prefix reuse, context limits (smollm2 on the CPU)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.engine import EngineModel, LoadParams, SamplingParams, Token
from server.errors import BadRequest, InternalError, ServerBusy

pytestmark = pytest.mark.slow

LONG = {"temperature": 0, "num_predict": 100_000, "ignore_eos": True}


@pytest.fixture
def small(smollm2_path: Path) -> Iterator[EngineModel]:
    """Two slots of 96 tokens and a queue of one: limits are reached quickly."""
    model = EngineModel.load(
        LoadParams(model_path=str(smollm2_path), num_ctx=96, num_parallel=2, num_thread=1, max_queue=1)
    )
    yield model
    model.close()


async def eventually(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_aclose_frees_the_slot(small: EngineModel, kit: Any) -> None:
    async def scenario() -> None:
        stream = small.generate(kit.chatml("Tell me a story."), SamplingParams(**LONG))
        first = await anext(stream)
        assert isinstance(first, Token)
        assert small.active_requests == 1
        await stream.aclose()
        await eventually(lambda: small.active_requests == 0)
        with pytest.raises(StopAsyncIteration):
            await anext(stream)

    kit.run(scenario())


def test_dropped_and_cancelled_consumers_free_their_slots(small: EngineModel, kit: Any) -> None:
    async def consume(n: int) -> None:
        async for _ in small.generate(kit.chatml("Count to a million."), SamplingParams(**LONG)):
            n -= 1
            if n == 0:
                break  # the stream object is dropped here, without aclose()

    async def scenario() -> None:
        await consume(3)
        task = asyncio.create_task(consume(10**9))
        await eventually(lambda: small.active_requests == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await eventually(lambda: small.active_requests == 0 and small.waiting_requests == 0)

    kit.run(scenario())


def test_queue_overflow_is_server_busy_and_admitted_requests_finish(small: EngineModel, kit: Any) -> None:
    async def scenario() -> None:
        options = SamplingParams(temperature=0, num_predict=24, ignore_eos=True)
        streams = [small.generate(kit.chatml(f"Question {i}"), options) for i in range(3)]  # 2 slots + 1 waiting
        with pytest.raises(ServerBusy):
            small.generate(kit.chatml("one too many"), options)
        results = await asyncio.gather(*(kit.Result.drain(s) for s in streams))
        assert [r.done.eval_count for r in results] == [24, 24, 24]
        # room again
        again = await kit.collect(small, kit.chatml("again"), temperature=0, num_predict=2)
        assert again.done.eval_count == 2

    kit.run(scenario())


def test_waiting_requests_keep_arrival_order(smollm2_path: Path, kit: Any) -> None:
    model = EngineModel.load(LoadParams(model_path=str(smollm2_path), num_ctx=128, num_parallel=1, num_thread=1))
    try:
        order: list[int] = []

        async def one(i: int) -> None:
            await kit.collect(model, kit.chatml(f"Item {i}"), temperature=0, num_predict=3, ignore_eos=True)
            order.append(i)

        async def scenario() -> None:
            await asyncio.gather(*(one(i) for i in range(5)))

        kit.run(scenario())
        assert order == [0, 1, 2, 3, 4]
    finally:
        model.close()


def test_prefix_reuse_on_a_second_turn(smollm2_path: Path, kit: Any) -> None:
    params = LoadParams(model_path=str(smollm2_path), num_ctx=512, num_parallel=2, num_thread=1)
    model = EngineModel.load(params)
    fresh = EngineModel.load(params)
    try:
        system = "<|im_start|>system\nYou are a helpful assistant who answers briefly.<|im_end|>\n"
        turn1 = system + kit.chatml("Name a fruit.")
        first = kit.generate(model, turn1, temperature=0, num_predict=16)
        assert first.done.prompt_eval_count == len(model.tokenize(turn1))
        turn2 = turn1 + first.text + "<|im_end|>\n" + kit.chatml("And a vegetable?")
        second = kit.generate(model, turn2, temperature=0, num_predict=16)
        total = len(model.tokenize(turn2))
        assert second.done.prompt_eval_count < total - len(model.tokenize(turn1)) + 2
        assert second.done.context[:total] == tuple(model.tokenize(turn2))
        # the reused cells give the same answer as a full evaluation
        assert kit.generate(fresh, turn2, temperature=0, num_predict=16).text == second.text
        # the same prompt again evaluates a single token
        assert kit.generate(model, turn2, temperature=0, num_predict=4).done.prompt_eval_count == 1
    finally:
        model.close()
        fresh.close()


def test_context_shift_keeps_generating(small: EngineModel, kit: Any) -> None:
    result = kit.generate(small, kit.chatml("Tell me a story."), temperature=0, num_predict=200, ignore_eos=True)
    assert result.done.done_reason == "length"
    assert result.done.eval_count == 200
    assert small.context_length == 96


def test_without_shift_generation_ends_at_the_context(small: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("Tell me a story.")
    n_prompt = len(small.tokenize(prompt))
    for options in ({"shift": False, "num_predict": 200}, {"num_predict": -2}):
        result = kit.generate(small, prompt, temperature=0, ignore_eos=True, **options)
        assert result.done.done_reason == "length"
        assert result.done.eval_count == 96 - n_prompt + 1  # the last sampled token needs no cell


def test_long_prompts_are_truncated_or_refused(small: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("word " * 300)
    tokens = small.tokenize(prompt)
    assert len(tokens) > 96
    result = kit.generate(small, prompt, temperature=0, num_predict=4, num_keep=5, ignore_eos=True)
    assert result.done.truncated
    assert result.done.context[:5] == tuple(tokens[:5])
    assert result.done.context[5:95] == tuple(tokens[-90:])
    assert result.done.eval_count == 4

    async def refused() -> None:
        small.generate(prompt, SamplingParams(truncate=False))

    with pytest.raises(BadRequest, match="the input length exceeds the context length"):
        kit.run(refused())


def test_close_fails_running_requests(smollm2_path: Path, kit: Any) -> None:
    model = EngineModel.load(LoadParams(model_path=str(smollm2_path), num_ctx=128, num_parallel=1, num_thread=1))

    async def scenario() -> None:
        stream = model.generate(kit.chatml("Tell me a story."), SamplingParams(**LONG))
        await anext(stream)
        await asyncio.to_thread(model.close)
        with pytest.raises(InternalError):
            async for _ in stream:
                pass
        with pytest.raises(InternalError):
            model.generate("again", SamplingParams())

    kit.run(scenario())


def test_a_slot_moved_down_to_fill_a_gap_continues_exactly(smollm2_path: Path, kit: Any) -> None:
    """A request ending in slot 0 leaves a gap: the request in the highest slot moves into it (llama.cpp runs a
    batch with gaps in its seq ids as several passes) and goes on as if it had never moved."""
    model = EngineModel.load(LoadParams(model_path=str(smollm2_path), num_ctx=256, num_parallel=3, num_thread=1))
    long = {"temperature": 0, "num_predict": 150, "ignore_eos": True}
    prompts = [kit.chatml("Count from one to ten."), kit.chatml("Tell me about the moon.")]
    try:
        alone = [kit.generate(model, p, **long).text for p in prompts]
        packed: list[list[int]] = []

        async def first() -> None:
            await kit.collect(model, kit.chatml("Hi"), temperature=0, num_predict=2, ignore_eos=True)

        async def follow(prompt: str, watch: bool, short: asyncio.Task[None]) -> str:
            text, after = "", 0
            async for event in model.generate(prompt, SamplingParams(**long)):
                if isinstance(event, Token):
                    text += event.text
                    after += short.done()
                    if watch and after == 3:  # two steps after the short request ended
                        packed.append(model._loop.busy_seqs if model._loop else [])
            return text

        async def scenario() -> list[str]:
            short = asyncio.ensure_future(first())
            texts = await asyncio.gather(follow(prompts[0], False, short), follow(prompts[1], True, short))
            await short
            return texts

        assert kit.run(scenario()) == alone
        assert packed == [[0, 1]]
    finally:
        model.close()


def test_a_shifted_slot_moves_exactly(small: EngineModel, kit: Any) -> None:
    """Both slots shift their context; the one in slot 1 then moves to slot 0 and still matches its run alone."""
    prompt = kit.chatml("Tell me a story.")
    alone = kit.generate(small, prompt, temperature=0, num_predict=260, ignore_eos=True).text

    async def scenario() -> str:
        first = asyncio.ensure_future(
            kit.collect(small, kit.chatml("Count."), temperature=0, num_predict=120, ignore_eos=True)
        )
        await asyncio.sleep(0)  # admitted first: slot 0
        result = await kit.collect(small, prompt, temperature=0, num_predict=260, ignore_eos=True)
        assert (await first).done.eval_count == 120
        return str(result.text)

    assert kit.run(scenario()) == alone
