"""The server's life as a cluster sees it: readiness, liveness, and the graceful drain on SIGTERM.

- Ready (``/readyz``) once every preload model of the catalog has loaded once, and until a drain starts. A
  preload that failed keeps the server not ready, and the body says why.
- Live (``/healthz``) while every loaded model's runner answers a probe in time and none of their compute threads
  is stuck in one step for longer than ``CORRAL_STEP_TIMEOUT`` (checked in :mod:`server.api.health`).
- Drain: :meth:`Lifecycle.begin_drain` (the first SIGTERM) makes ``/readyz`` fail at once and new work get 503
  with ``Retry-After`` (:class:`~server.errors.ShuttingDown`); :meth:`Lifecycle.drain` then waits for the requests
  in flight, up to ``CORRAL_DRAIN_TIMEOUT``. Generations still running then end with the dialect's error line
  (their event streams are failed with ShuttingDown), not with a cut connection; anything else left is cut when
  the server stops.

Work that counts as in flight: the routes in :data:`WORK_ROUTES`, counted by the drain gate
(:mod:`server.api.gates`) from the moment they are admitted until their response has been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from server.engine import EventStream
from server.errors import ShuttingDown

log = logging.getLogger(__name__)

# Requests that start work a drain waits for (and refuses once it has begun).
WORK_ROUTES = frozenset(
    {
        "/api/generate",
        "/api/chat",
        "/api/embed",
        "/api/embeddings",
        "/api/create",
        "/api/pull",
        "/api/push",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
    }
)
# After the deadline, how long generations get to write their error line before the server stops anyway.
ABORT_GRACE_S = 5.0


@dataclass
class Preload:
    """One catalog preload: pending until it loaded (``loaded``) or failed (``error``)."""

    name: str
    loaded: bool = False
    error: str = ""


@dataclass
class Lifecycle:
    """One per app (``app.state.lifecycle``); all of it lives on the server's event loop."""

    preloads: dict[str, Preload] = field(default_factory=dict)
    draining: bool = False
    in_flight: int = 0
    _streams: set[EventStream] = field(default_factory=set)
    _idle: asyncio.Event | None = None

    # -- readiness --

    def expect_preload(self, name: str) -> None:
        self.preloads[name] = Preload(name)

    def preload_done(self, name: str, error: str = "") -> None:
        entry = self.preloads.setdefault(name, Preload(name))
        entry.loaded, entry.error = not error, error

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether the server takes traffic, and a body that says what is missing."""
        loading = [p.name for p in self.preloads.values() if not p.loaded and not p.error]
        failed = {p.name: p.error for p in self.preloads.values() if p.error}
        ready = not (self.draining or loading or failed)
        body: dict[str, object] = {"status": "ready" if ready else "not ready"}
        if self.draining:
            body["draining"] = True
        if loading:
            body["loading"] = loading
        if failed:
            body["failed"] = failed
        return ready, body

    # -- drain --

    def admit(self) -> None:
        """Count one unit of work in; raises ShuttingDown during a drain."""
        if self.draining:
            raise ShuttingDown()
        self.in_flight += 1
        self._idle_event().clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle_event().set()

    @contextlib.contextmanager
    def watching(self, events: EventStream) -> Iterator[EventStream]:
        """Let a drain that runs out of time end ``events`` with ShuttingDown."""
        self._streams.add(events)
        try:
            yield events
        finally:
            self._streams.discard(events)

    def begin_drain(self) -> None:
        if not self.draining:
            self.draining = True
            log.info("draining: refusing new work, %d request(s) in flight", self.in_flight)

    async def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the work in flight; then end the generations still running.
        Returns how many requests were still in flight at the deadline."""
        self.begin_drain()
        idle = self._idle_event()
        if self.in_flight == 0:
            idle.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(idle.wait(), timeout)
        left = self.in_flight
        if left:
            log.warning("drain timeout: ending %d request(s) still in flight", left)
            for events in list(self._streams):
                events.fail(ShuttingDown())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(idle.wait(), ABORT_GRACE_S)
        return left

    def _idle_event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            self._idle.set()
        return self._idle
