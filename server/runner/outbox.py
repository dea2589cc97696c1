"""A runner's generation events on their way to the API process: one message per decode step.

The decode loop hands each request's events to a :class:`RequestSink` on the compute thread. While a step runs,
the :class:`Outbox` (the compute thread's step listener) keeps them; when the step ends it sends them all as one
:class:`~server.runner.messages.Events` message. At 8 streams that is one pickle, one write and one wake-up of the
API process's reader per step instead of eight, and no hop through the runner's event loop at all. Events put
outside a step (a request failed while being admitted, or from another thread) are sent at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from server.engine import Done, Event

from .messages import Events


class Outbox:
    """Collects events during a compute step and sends them when it ends, with ``send`` (which must not raise
    while the API process is there, and swallows the errors of one that is gone)."""

    def __init__(self, send: Callable[[Events], None], portable: Callable[[BaseException], BaseException]) -> None:
        self._send = send
        self._portable = portable
        self._lock = threading.Lock()
        self._in_step = False
        self._items: list[tuple[int, Event | BaseException]] = []

    def add(self, rid: int, item: Event | BaseException) -> None:
        if isinstance(item, BaseException):
            item = self._portable(item)
        with self._lock:
            self._items.append((rid, item))
            if self._in_step:
                return
            items, self._items = self._items, []
        self._send(Events(items))

    # -- the compute thread's step listener --

    def began(self) -> None:
        with self._lock:
            self._in_step = True

    def ended(self) -> None:
        with self._lock:
            self._in_step = False
            items, self._items = self._items, []
        if items:
            self._send(Events(items))


class RequestSink:
    """One generation's end of the outbox; ``finished`` runs once after its last event (Done or an error)."""

    def __init__(self, rid: int, outbox: Outbox, finished: Callable[[int], None]) -> None:
        self._rid = rid
        self._outbox = outbox
        self._finished = finished

    def put(self, item: Event | BaseException) -> bool:
        self._outbox.add(self._rid, item)
        if isinstance(item, Done | BaseException):
            self._finished(self._rid)
        return True
