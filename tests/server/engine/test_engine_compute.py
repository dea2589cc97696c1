"""The compute thread: every model of a process decodes on one thread (smollm2 on the CPU)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.engine import ComputeThread, EngineModel, LoadParams
from server.errors import InternalError

pytestmark = pytest.mark.slow

OPTIONS = {"temperature": 0, "num_predict": 24, "ignore_eos": True}


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.fixture
def compute() -> Iterator[ComputeThread]:
    thread = ComputeThread()
    yield thread
    thread.close()


def params(path: Path, **options: Any) -> LoadParams:
    return LoadParams(model_path=str(path), num_ctx=128, num_parallel=2, num_thread=2, **options)


def test_two_models_share_the_thread_and_its_workers(smollm2_path: Path, compute: ComputeThread, kit: Any) -> None:
    first = EngineModel.load(params(smollm2_path), compute)
    second = EngineModel.load(params(smollm2_path, num_batch=256), compute)
    try:
        prompts = [kit.chatml("Name a colour."), kit.chatml("Name an animal.")]
        alone = [kit.generate(first, p, **OPTIONS).text for p in prompts]
        threads = os_threads()

        async def together() -> list[str]:
            results = await asyncio.gather(
                *(kit.collect(model, p, **OPTIONS) for model in (first, second) for p in prompts)
            )
            return [r.text for r in results]

        assert kit.run(together()) == alone + alone
        # No new OS thread: no second compute thread, hence no second pool of OpenMP workers.
        assert os_threads() == threads
        assert [t.name for t in threading.enumerate()].count("corral-compute") == 1
    finally:
        first.close()
        second.close()


def test_unloading_one_model_leaves_the_other_running(smollm2_path: Path, compute: ComputeThread, kit: Any) -> None:
    staying = EngineModel.load(params(smollm2_path), compute)
    leaving = EngineModel.load(params(smollm2_path), compute)
    try:
        prompt = kit.chatml("Tell me a story.")
        long = {**OPTIONS, "num_predict": 60}
        alone = kit.generate(staying, prompt, **long).text

        async def scenario() -> str:
            running = asyncio.ensure_future(kit.collect(staying, prompt, **long))
            doomed = leaving.generate(prompt, kit.sampling(**long))
            await anext(doomed)
            await asyncio.to_thread(leaving.close)
            with pytest.raises(InternalError):
                async for _ in doomed:
                    pass
            return str((await running).text)

        assert kit.run(scenario()) == alone
        assert staying.active_requests == 0
    finally:
        staying.close()
        leaving.close()


def test_embeddings_run_on_the_compute_thread(smollm2_path: Path, compute: ComputeThread, kit: Any) -> None:
    model = EngineModel.load(params(smollm2_path, embedding=True), compute)
    try:

        async def scenario() -> None:
            gate = threading.Event()
            busy = compute.call(gate.wait)  # holds the compute thread
            embedding = asyncio.ensure_future(model.embed(["hello world", "a cat"]))
            await asyncio.sleep(0.2)
            assert not embedding.done()  # waits for the thread, not computed elsewhere
            gate.set()
            vectors, count = await embedding
            assert len(vectors) == 2 and count > 0
            assert busy.result() is True

        kit.run(scenario())
    finally:
        model.close()


def test_jobs_queued_before_close_still_run_and_later_calls_fail() -> None:
    compute = ComputeThread()
    gate = threading.Event()
    blocker = compute.call(gate.wait)
    queued = compute.call(lambda: 42)
    closing = threading.Thread(target=compute.close)
    closing.start()
    gate.set()
    closing.join(timeout=60)
    assert not closing.is_alive()
    assert blocker.result(timeout=0) is True
    assert queued.result(timeout=0) == 42
    with pytest.raises(InternalError, match="shutting down"):
        compute.call(lambda: 1)
    # After the thread has stopped, run() still works (freeing objects at shutdown): on the caller's thread.
    assert compute.run(threading.current_thread) is threading.current_thread()


def test_a_model_loaded_without_a_compute_thread_gets_its_own(smollm2_path: Path, kit: Any) -> None:
    before = [t.name for t in threading.enumerate()].count("corral-compute")
    model = EngineModel.load(params(smollm2_path))
    assert [t.name for t in threading.enumerate()].count("corral-compute") == before + 1
    assert kit.generate(model, kit.chatml("Hi"), **OPTIONS).done.eval_count == 24
    model.close()
    assert [t.name for t in threading.enumerate()].count("corral-compute") == before
