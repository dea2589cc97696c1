"""The asyncio side of a generation: events handed over from the decode thread, cancellation handed back.

The decode thread never blocks on a consumer: it schedules ``put_nowait`` on the consumer's event loop with
``call_soon_threadsafe``. A consumer that stops (``aclose()``, task cancellation, or simply dropping the stream)
marks its request cancelled; the decode loop frees the slot at its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Protocol

from .events import Done, Event


class Sink(Protocol):
    """Where the decode loop hands a request's events, on the compute thread. ``put`` must not block."""

    def put(self, item: Event | BaseException) -> bool:
        """Hand over an event, or the exception that ends the request. False when nobody consumes any more
        (the decode loop then cancels the request)."""
        ...


class EventSink:
    """The producer end, held by the request on the decode thread. It does not reference the consumer's
    :class:`EventStream`, so a stream nobody holds any more is finalised (and its request cancelled) at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()

    def put(self, item: Event | BaseException) -> bool:
        """Hand an event (or a terminal exception) to the consumer. False when its loop is gone."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the consumer's event loop is closed: nobody will read this
            return False
        return True


def deliver(items: Iterable[tuple[EventSink, Event | BaseException]]) -> None:
    """Hand many items to their sinks with one wake-up per event loop (not one per item), in order."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[EventSink, Event | BaseException]]] = defaultdict(list)
    for sink, item in items:
        by_loop[sink.loop].append((sink, item))
    for loop, batch in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody will read these
            loop.call_soon_threadsafe(_put_all, batch)


def _put_all(batch: list[tuple[EventSink, Event | BaseException]]) -> None:
    for sink, item in batch:
        sink.queue.put_nowait(item)


class EventStream:
    """An ``AsyncIterator[Event]`` of one generation: :class:`Token` chunks then exactly one :class:`Done`,
    or an exception (raised from ``__anext__``) if the engine failed. Usable as ``async with`` to make sure the
    request is cancelled when the block exits early."""

    def __init__(self, sink: EventSink, on_cancel: Callable[[], None]) -> None:
        self._queue = sink.queue
        self._on_cancel = on_cancel
        self._finished = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._finished:
            raise StopAsyncIteration
        try:
            item = await self._queue.get()
        except BaseException:
            self._cancel()
            raise
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        if isinstance(item, Done):
            self._finished = True
        return item

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error`` (raised to the consumer after the events already queued); the request
        is cancelled when the consumer stops. Call on the consumer's event loop."""
        self._queue.put_nowait(error)

    async def aclose(self) -> None:
        """Stop consuming; the request is cancelled unless it already finished."""
        self._cancel()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._cancel()

    def __del__(self) -> None:
        self._cancel()

    def _cancel(self) -> None:
        if not self._finished:
            self._finished = True
            self._on_cancel()
