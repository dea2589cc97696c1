"""The scheduler: which models are loaded, for how long, and who waits.

- A model loads on first use; requests that arrive while it loads wait for that one load.
- Each loaded model counts its active requests (leases). When the count drops to zero its keep-alive timer
  starts: 0 unloads at once, ``inf`` never, anything else after that many seconds. A request's ``keep_alive``
  replaces the model's stored value; a request without one keeps it (the first value is
  ``OLLAMA_KEEP_ALIVE``), as Ollama does.
- At most ``max_loaded`` models are loaded. Another model evicts the least recently used idle one; a model
  with active requests is never evicted, the new request waits instead.
- A request whose load-time options differ from the loaded runner's waits until that runner is idle, then
  the model is reloaded with the new options.

All state lives on one asyncio event loop; loading and unloading (blocking llama.cpp calls) run in worker
threads. The runner type is a protocol so timing-sensitive tests can use a scripted one; the server uses the
engine's ``EngineModel``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from server.errors import ModelLoadFailed

log = logging.getLogger(__name__)

FOREVER = math.inf
# Ollama reports a never-expiring model with an expiry far in the future (Go's max duration from now).
FOREVER_AT = datetime(2318, 1, 1, tzinfo=UTC)


class Runner(Protocol):
    """What the scheduler needs of a loaded model."""

    @property
    def context_length(self) -> int: ...

    @property
    def size_bytes(self) -> int: ...

    @property
    def vram_bytes(self) -> int: ...

    @property
    def alive(self) -> bool:
        """False once the runner died on its own (a crashed runner process): it is replaced, not reused."""
        ...

    def close(self) -> None: ...


R = TypeVar("R", bound=Runner)
P = TypeVar("P")


@dataclass
class _Entry(Generic[R, P]):
    name: str
    params: P
    info: Any
    keep_alive: float
    ready: asyncio.Future[R]
    runner: R | None = None
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)
    expires_at: datetime | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True)
class RunningModel(Generic[R, P]):
    """One row of ``/api/ps`` (and of ``/metrics``, ``/healthz``)."""

    name: str
    runner: R
    params: P
    info: Any
    size: int
    size_vram: int
    context_length: int
    expires_at: datetime
    active: int


class Lease(Generic[R]):
    """The right to use a loaded runner; ``release()`` (or ``async with``) gives it back exactly once."""

    def __init__(self, scheduler: Scheduler[R, Any], entry: _Entry[R, Any]) -> None:
        assert entry.runner is not None
        self.runner: R = entry.runner
        self._scheduler = scheduler
        self._entry = entry
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._scheduler._release(self._entry)

    async def __aenter__(self) -> R:
        return self.runner

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class Scheduler(Generic[R, P]):
    """Loads and unloads runners of type ``R`` built from load parameters of type ``P`` by ``loader``."""

    def __init__(
        self,
        loader: Callable[[P], R],
        *,
        max_loaded: int,
        default_keep_alive: float,
        load_timeout: float = FOREVER,
        on_load: Callable[[str, float], None] | None = None,
    ) -> None:
        """``on_load(name, seconds)`` is called after each successful load (metrics)."""
        self._loader = loader
        self._on_load = on_load
        self._waiting: dict[str, int] = {}
        self.max_loaded = max(1, max_loaded)
        self.default_keep_alive = default_keep_alive
        self.load_timeout = load_timeout if load_timeout > 0 else FOREVER
        self._entries: dict[str, _Entry[R, P]] = {}
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    async def acquire(self, name: str, params: P, *, keep_alive: float | None = None, info: Any = None) -> Lease[R]:
        """Get a lease on ``name`` loaded with ``params``, loading (or reloading) it as needed.

        Raises ``ModelLoadFailed`` (or the loader's typed error) when loading fails; every waiter of that load
        gets the same error. Cancellation while waiting leaves no trace.
        """
        self._waiting[name] = self._waiting.get(name, 0) + 1
        try:
            return await self._acquire(name, params, keep_alive, info)
        finally:
            self._waiting[name] -= 1
            if not self._waiting[name]:
                del self._waiting[name]

    def waiting(self) -> dict[str, int]:
        """Requests waiting for a lease (a load, an eviction, a reload), by model name."""
        return dict(self._waiting)

    async def _acquire(self, name: str, params: P, keep_alive: float | None, info: Any) -> Lease[R]:
        while True:
            async with self._changed:
                entry = self._entries.get(name)
                if entry is not None and entry.runner is not None and not entry.runner.alive:
                    # A dead runner: its requests are failing; replace it once they have released it.
                    if entry.active == 0:
                        await self._unload(entry)
                    else:
                        await self._changed.wait()
                    continue
                if entry is not None and entry.params == params:
                    if entry.runner is not None:
                        return self._lease(entry, keep_alive, info)
                    ready = entry.ready
                elif entry is not None:
                    if entry.runner is not None and entry.active == 0:
                        await self._unload(entry)
                    else:
                        await self._changed.wait()
                    continue
                elif self._loaded_count() >= self.max_loaded:
                    victim = self._idle_lru()
                    if victim is not None:
                        await self._unload(victim)
                    else:
                        await self._changed.wait()
                    continue
                else:
                    loop = asyncio.get_running_loop()
                    entry = _Entry(name, params, info, self.default_keep_alive, loop.create_future())
                    if keep_alive is not None:
                        entry.keep_alive = keep_alive
                    self._entries[name] = entry
                    self._spawn(self._load(entry))
                    ready = entry.ready
            # Shielded: a waiter that goes away must not cancel the load others wait for. A failed load raises
            # its error here for every waiter; a successful one loops to take the lease under the lock.
            await asyncio.shield(ready)

    async def unload(self, name: str) -> bool:
        """Unload ``name`` now if it is loaded and idle (Ollama's empty prompt with keep_alive 0); a busy model
        unloads as soon as its requests finish. Returns whether it was loaded."""
        async with self._changed:
            entry = self._entries.get(name)
            if entry is None or entry.runner is None:
                return False
            entry.keep_alive = 0
            if entry.active == 0:
                await self._unload(entry)
            return True

    def running(self) -> list[RunningModel[R, P]]:
        """Loaded models for ``/api/ps``, the one expiring last first."""
        now = datetime.now(UTC)
        rows = []
        for entry in self._entries.values():
            if entry.runner is None or not entry.runner.alive:
                continue
            expires = entry.expires_at or _expiry(now, entry.keep_alive)
            rows.append(
                RunningModel(
                    name=entry.name,
                    runner=entry.runner,
                    params=entry.params,
                    info=entry.info,
                    size=entry.runner.size_bytes,
                    size_vram=entry.runner.vram_bytes,
                    context_length=entry.runner.context_length,
                    expires_at=expires,
                    active=entry.active,
                )
            )
        return sorted(rows, key=lambda r: r.expires_at, reverse=True)

    async def close(self) -> None:
        """Unload everything (server shutdown)."""
        async with self._changed:
            for entry in list(self._entries.values()):
                if entry.runner is not None:
                    await self._unload(entry)

    # -- internals ---------------------------------------------------------------------------------------

    def _lease(self, entry: _Entry[R, P], keep_alive: float | None, info: Any) -> Lease[R]:
        entry.active += 1
        entry.last_used = time.monotonic()
        entry.expires_at = None
        if keep_alive is not None:
            entry.keep_alive = keep_alive
        if info is not None:
            entry.info = info
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        return Lease(self, entry)

    def _loaded_count(self) -> int:
        return len(self._entries)

    def _idle_lru(self) -> _Entry[R, P] | None:
        idle = [e for e in self._entries.values() if e.runner is not None and e.active == 0]
        return min(idle, key=lambda e: e.last_used) if idle else None

    async def _load(self, entry: _Entry[R, P]) -> None:
        started = time.monotonic()
        # A load runs in a thread that cannot be interrupted: one abandoned (timed out, or the server stopping)
        # still finishes, and the runner it produces is closed then instead of staying allocated for good.
        task = asyncio.ensure_future(asyncio.to_thread(self._loader, entry.params))
        try:
            shielded = asyncio.shield(task)
            runner = await (
                asyncio.wait_for(shielded, self.load_timeout) if math.isfinite(self.load_timeout) else shielded
            )
        except BaseException as exc:
            if not task.done():
                task.add_done_callback(self._close_abandoned)
            error = exc
            if isinstance(exc, TimeoutError):
                error = ModelLoadFailed(f"timed out waiting for {entry.name} to load")
            async with self._changed:
                self._entries.pop(entry.name, None)
                self._changed.notify_all()
            entry.ready.set_exception(error)
            entry.ready.exception()  # mark retrieved: waiters may all have gone away
            return
        seconds = time.monotonic() - started
        async with self._changed:
            entry.runner = runner
            log.info("loaded %s in %.2fs", entry.name, seconds)
            self._changed.notify_all()
        if self._on_load is not None:
            self._on_load(entry.name, seconds)
        entry.ready.set_result(runner)

    def _close_abandoned(self, task: asyncio.Future[R]) -> None:
        if not task.cancelled() and task.exception() is None:
            runner = task.result()
            log.warning("closing a model whose load finished after it was abandoned")
            self._spawn(asyncio.to_thread(runner.close))

    def _release(self, entry: _Entry[R, P]) -> None:
        entry.active -= 1
        entry.last_used = time.monotonic()
        if entry.active == 0 and entry.runner is not None and not entry.runner.alive:
            self._spawn(self._expire(entry))
        elif entry.active == 0:
            entry.expires_at = _expiry(datetime.now(UTC), entry.keep_alive)
            if entry.keep_alive <= 0:
                self._spawn(self._expire(entry))
            elif math.isfinite(entry.keep_alive):
                loop = asyncio.get_running_loop()
                entry.timer = loop.call_later(entry.keep_alive, lambda: self._spawn(self._expire(entry)))
        self._spawn(self._notify())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # Keep a reference: the event loop holds tasks weakly.
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _expire(self, entry: _Entry[R, P]) -> None:
        async with self._changed:
            if self._entries.get(entry.name) is entry and entry.active == 0 and entry.runner is not None:
                await self._unload(entry)

    async def _unload(self, entry: _Entry[R, P]) -> None:
        """Remove and close a runner; the caller holds the lock."""
        if entry.timer is not None:
            entry.timer.cancel()
        self._entries.pop(entry.name, None)
        runner, entry.runner = entry.runner, None
        if runner is not None:
            await asyncio.to_thread(runner.close)
            log.info("unloaded %s", entry.name)
        self._changed.notify_all()


def _expiry(now: datetime, keep_alive: float) -> datetime:
    if not math.isfinite(keep_alive):
        return FOREVER_AT
    try:
        expires = now + timedelta(seconds=max(keep_alive, 0.0))
    except OverflowError:  # beyond what a datetime holds: as good as forever
        return FOREVER_AT
    return min(expires, FOREVER_AT)
