"""Scheduler policy with a scripted runner (exact timing control); the real engine is exercised elsewhere."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from server.errors import ModelLoadFailed
from server.scheduler import FOREVER_AT, Scheduler


@dataclass
class FakeRunner:
    params: str
    context_length: int = 2048
    size_bytes: int = 1000
    vram_bytes: int = 0
    closed: bool = False
    alive: bool = True

    def close(self) -> None:
        self.closed = True


@dataclass
class Loader:
    """Counts loads; ``gate`` (if set) holds every load until released; ``fail`` names params that fail."""

    gate: threading.Event | None = None
    fail: set[str] = field(default_factory=set)
    loaded: list[FakeRunner] = field(default_factory=list)

    def __call__(self, params: str) -> FakeRunner:
        if self.gate is not None:
            assert self.gate.wait(60)
        if params in self.fail:
            raise ModelLoadFailed(f"cannot load {params}")
        runner = FakeRunner(params)
        self.loaded.append(runner)
        return runner


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


def make(loader: Loader, **kwargs: Any) -> Scheduler[FakeRunner, str]:
    options: dict[str, Any] = {"max_loaded": 1, "default_keep_alive": 300.0, **kwargs}
    return Scheduler(loader, **options)


def test_concurrent_requests_share_one_load() -> None:
    async def scenario() -> None:
        loader = Loader(gate=threading.Event())
        scheduler = make(loader)
        waiters = [asyncio.create_task(scheduler.acquire("m", "p")) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiters)
        loader.gate.set()  # type: ignore[union-attr]
        leases = await asyncio.gather(*waiters)
        assert len(loader.loaded) == 1
        assert {id(lease.runner) for lease in leases} == {id(loader.loaded[0])}
        assert scheduler.running()[0].active == 5
        for lease in leases:
            lease.release()
        await until(lambda: scheduler.running()[0].active == 0)

    run(scenario)


def test_keep_alive_zero_unloads_after_the_request() -> None:
    async def scenario() -> None:
        loader = Loader()
        scheduler = make(loader)
        async with await scheduler.acquire("m", "p", keep_alive=0) as runner:
            assert not runner.closed
        await until(lambda: runner.closed)
        assert scheduler.running() == []

    run(scenario)


def test_idle_model_expires_on_time_and_busy_one_does_not() -> None:
    async def scenario() -> None:
        loader = Loader()
        scheduler = make(loader)
        lease = await scheduler.acquire("m", "p", keep_alive=0.05)
        await asyncio.sleep(0.2)
        assert not lease.runner.closed, "a model with an active request never expires"
        lease.release()
        await until(lambda: lease.runner.closed)

    run(scenario)


def test_request_without_keep_alive_keeps_the_last_value() -> None:
    async def scenario() -> None:
        loader = Loader()
        scheduler = make(loader, default_keep_alive=0.0)
        (await scheduler.acquire("m", "p", keep_alive=math.inf)).release()
        (await scheduler.acquire("m", "p")).release()
        await asyncio.sleep(0.05)
        (row,) = scheduler.running()
        assert row.expires_at == FOREVER_AT
        assert len(loader.loaded) == 1

    run(scenario)


def test_least_recently_used_idle_model_is_evicted() -> None:
    async def scenario() -> None:
        loader = Loader()
        scheduler = make(loader, max_loaded=2)
        for name in ("a", "b"):
            (await scheduler.acquire(name, name)).release()
        (await scheduler.acquire("a", "a")).release()  # b is now the least recently used
        (await scheduler.acquire("c", "c")).release()
        assert sorted(r.name for r in scheduler.running()) == ["a", "c"]
        assert [r.closed for r in loader.loaded] == [False, True, False]

    run(scenario)


def test_busy_model_is_never_evicted_new_request_waits() -> None:
    async def scenario() -> None:
        loader = Loader()
        scheduler = make(loader, max_loaded=1)
        busy = await scheduler.acquire("a", "a")
        waiting = asyncio.create_task(scheduler.acquire("b", "b"))
        await asyncio.sleep(0.1)
        assert not waiting.done() and not busy.runner.closed
        busy.release()
        (await waiting).release()
        assert busy.runner.closed
        assert [r.name for r in scheduler.running()] == ["b"]

    run(scenario)


def test_changed_load_options_reload_once_idle() -> None:
    async def scenario() -> None:
        loader = Loader()
        scheduler = make(loader)
        first = await scheduler.acquire("m", "ctx=2048")
        reload = asyncio.create_task(scheduler.acquire("m", "ctx=4096"))
        await asyncio.sleep(0.05)
        assert not reload.done()
        first.release()
        second = await reload
        assert first.runner.closed and second.runner.params == "ctx=4096"
        second.release()

    run(scenario)


def test_failed_load_reaches_every_waiter_and_can_be_retried() -> None:
    async def scenario() -> None:
        loader = Loader(gate=threading.Event(), fail={"bad"})
        scheduler = make(loader)
        waiters = [asyncio.create_task(scheduler.acquire("m", "bad")) for _ in range(3)]
        await asyncio.sleep(0.02)
        loader.gate.set()  # type: ignore[union-attr]
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, ModelLoadFailed) for r in results)
        assert scheduler.running() == []
        (await scheduler.acquire("m", "good")).release()
        assert [r.name for r in scheduler.running()] == ["m"]

    run(scenario)


def test_cancelled_waiter_does_not_cancel_the_load() -> None:
    async def scenario() -> None:
        loader = Loader(gate=threading.Event())
        scheduler = make(loader)
        first = asyncio.create_task(scheduler.acquire("m", "p"))
        second = asyncio.create_task(scheduler.acquire("m", "p"))
        await asyncio.sleep(0.02)
        first.cancel()
        loader.gate.set()  # type: ignore[union-attr]
        lease = await second
        with pytest.raises(asyncio.CancelledError):
            await first
        assert scheduler.running()[0].active == 1
        lease.release()

    run(scenario)


def test_explicit_unload() -> None:
    async def scenario() -> None:
        loader = Loader()
        scheduler = make(loader)
        assert await scheduler.unload("m") is False
        (await scheduler.acquire("m", "p")).release()
        assert await scheduler.unload("m") is True
        assert loader.loaded[0].closed and scheduler.running() == []

    run(scenario)


def test_a_load_that_times_out_is_closed_when_it_finishes() -> None:
    """The load thread cannot be interrupted: the runner it produces after the timeout must not leak."""

    async def scenario() -> None:
        loader = Loader(gate=threading.Event())
        scheduler = make(loader, load_timeout=0.05)
        with pytest.raises(ModelLoadFailed, match="timed out"):
            await scheduler.acquire("m", "p")
        loader.gate.set()  # type: ignore[union-attr]
        for _ in range(2000):
            if loader.loaded and loader.loaded[0].closed:
                break
            await asyncio.sleep(0.01)
        assert loader.loaded[0].closed
        assert scheduler.running() == []
        # The next request loads a fresh runner.
        lease = await scheduler.acquire("m", "p")
        assert lease.runner is loader.loaded[1] and not lease.runner.closed
        lease.release()

    run(scenario)


def test_a_dead_runner_is_replaced_once_its_requests_let_go() -> None:
    async def scenario() -> None:
        loader = Loader()
        scheduler = make(loader)
        held = await scheduler.acquire("m", "p")
        held.runner.alive = False  # the runner process died under a running request
        assert scheduler.running() == []  # /api/ps does not list it
        waiting = asyncio.create_task(scheduler.acquire("m", "p"))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the failing request still holds it
        held.release()
        lease = await asyncio.wait_for(waiting, 30)
        assert lease.runner is loader.loaded[1] and loader.loaded[0].closed
        lease.release()

    run(scenario)
