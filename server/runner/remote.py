"""The API side of a runner: :class:`RemoteModel` starts a runner process and forwards requests to it.

It offers what the inference service and the scheduler use of an :class:`~server.engine.EngineModel`
(``tokenize``, ``generate``, ``embed``, ``close`` and the facts ``/api/ps`` shows), so the service does not know
whether a model runs here or in a child. A reader thread hands each reply on the control socket to the future
of the request it answers. Generation events come on a socket of their own, read on the callers' event loop
itself (one wake-up per decode step, no thread hop): a decode step's worth per message, straight into the
streams' queues. When the runner dies, every request on it fails with an InternalError saying so, and
``alive`` turns False so the scheduler replaces the runner on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

from server.engine import Done, EventStream, LoadParams, SamplingParams, StepStats
from server.engine.stream import EventSink, deliver
from server.errors import InternalError, ModelLoadFailed

from .messages import (
    Cancel,
    Embed,
    Events,
    Facts,
    Failed,
    FromRunner,
    Generate,
    Load,
    Loaded,
    Probe,
    Reply,
    Shutdown,
    Tokenize,
    ToRunner,
)

log = logging.getLogger(__name__)

_SHUTDOWN_GRACE = 30.0


class RemoteModel:
    """A model loaded in a runner process. Create with :meth:`load` (blocking: run it in a worker thread)."""

    def __init__(
        self, params: LoadParams, process: subprocess.Popen[bytes], conn: Connection, events: Connection, loaded: Loaded
    ) -> None:
        self.params = params
        self.facts: Facts = loaded.facts
        self.pid = loaded.pid
        self._process = process
        self._conn = conn
        self._events = events
        self._events_loop: asyncio.AbstractEventLoop | None = None  # the loop that reads ``events``
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._streams: dict[int, EventSink] = {}
        self._futures: dict[int, Future[Any]] = {}
        self._alive = True
        self._closing = False
        self._reader = threading.Thread(target=self._read, name=f"runner-{self.pid}", daemon=True)
        self._reader.start()

    @classmethod
    def load(cls, params: LoadParams) -> RemoteModel:
        """Start a runner and load ``params`` in it. Raises the runner's load error (ModelLoadFailed,
        InvalidOption ...), or ModelLoadFailed when the runner dies while loading."""
        params.validate()
        ours, theirs = Pipe(duplex=True)
        events, their_events = Pipe(duplex=True)  # a socket pair: more buffer than a pipe
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "server.runner", str(theirs.fileno()), str(their_events.fileno())],
                pass_fds=(theirs.fileno(), their_events.fileno()),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            events.close()
            raise
        finally:
            theirs.close()
            their_events.close()
        try:
            ours.send(Load(params))
            reply: FromRunner = ours.recv()
        except (EOFError, OSError):
            code = process.wait()
            ours.close()
            events.close()
            raise ModelLoadFailed(
                f"the model runner exited while loading {params.model_path} ({_exit(code)})"
            ) from None
        except BaseException:
            process.kill()
            process.wait()
            ours.close()
            events.close()
            raise
        if isinstance(reply, Failed):
            process.wait()
            ours.close()
            events.close()
            raise reply.error
        assert isinstance(reply, Loaded)
        return cls(params, process, ours, events, reply)

    # -- facts --

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def context_length(self) -> int:
        return self.facts.context_length

    @property
    def size_bytes(self) -> int:
        return self.facts.size_bytes

    @property
    def vram_bytes(self) -> int:
        return self.facts.vram_bytes

    @property
    def num_parallel(self) -> int:
        return self.facts.num_parallel

    @property
    def embedding_length(self) -> int:
        return self.facts.embedding_length

    # -- work --

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        """Prompt text to tokens, in the runner. Blocking: call it from a worker thread."""
        rid, future = self._future()
        self._send(Tokenize(rid, text, add_special), rid)
        tokens: list[int] = future.result()
        return tokens

    def generate(self, tokens: list[int], sampling: SamplingParams) -> EventStream:
        """Start a generation; its events (or its error, such as a BadRequest from the runner's checks)
        arrive on the returned stream. Must be called on the consumer's running event loop."""
        loop = asyncio.get_running_loop()
        sink = EventSink(loop)
        rid = next(self._ids)
        with self._lock:
            if not self._alive:
                raise InternalError(self._dead_message())
            self._streams[rid] = sink
            self._watch_events(loop)
        self._send(Generate(rid, list(tokens), sampling), rid)
        return EventStream(sink, lambda: self._cancel(rid))

    async def embed(self, texts: list[str], truncate: bool = True) -> tuple[list[list[float]], int]:
        rid, future = self._future()
        self._send(Embed(rid, texts, truncate), rid)
        vectors, count = await asyncio.wrap_future(future)
        return vectors, count

    async def step_stats(self) -> StepStats:
        """The runner's compute-thread clock. Callers bound the wait: a runner that does not answer is stuck."""
        rid, future = self._future()
        self._send(Probe(rid), rid)
        try:
            stats: StepStats = await asyncio.wrap_future(future)
        finally:
            with self._lock:
                self._futures.pop(rid, None)
        return stats

    def close(self) -> None:
        """Stop the runner (requests still on it fail) and wait for it; kill it if it does not stop in time."""
        with self._lock:
            self._closing = True
        with contextlib.suppress(OSError, ValueError):  # already gone
            self._send_raw(Shutdown())
        try:
            self._process.wait(_SHUTDOWN_GRACE)
        except subprocess.TimeoutExpired:
            log.warning("runner %d did not stop; killing it", self.pid)
            self._process.kill()
            self._process.wait()
        self._reader.join(_SHUTDOWN_GRACE)
        self._conn.close()
        self._close_events()

    # -- internals --

    def _future(self) -> tuple[int, Future[Any]]:
        rid = next(self._ids)
        future: Future[Any] = Future()
        with self._lock:
            if not self._alive:
                raise InternalError(self._dead_message())
            self._futures[rid] = future
        return rid, future

    def _send(self, message: ToRunner, rid: int) -> None:
        try:
            self._send_raw(message)
        except (OSError, ValueError):
            self._fail(rid, InternalError(self._dead_message()))

    def _send_raw(self, message: ToRunner) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _cancel(self, rid: int) -> None:
        """The consumer stopped: forget the stream and tell the runner (never blocks for long: a finalizer may
        call this)."""
        with self._lock:
            known = self._streams.pop(rid, None) is not None
        if known and self._alive:
            with contextlib.suppress(OSError, ValueError):  # the runner is gone: nothing to cancel
                self._send_raw(Cancel(rid))

    def _read(self) -> None:
        while True:
            try:
                message: FromRunner = self._conn.recv()
            except (EOFError, OSError):
                break
            if isinstance(message, Reply):
                self._resolve(message.rid, value=message.value)
            elif isinstance(message, Failed) and message.rid is not None:
                self._fail(message.rid, message.error)
        self._died()

    # -- generation events: read on the consumers' event loop --

    def _watch_events(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the events socket on ``loop`` (under ``_lock``). One loop reads at a time: the server has one;
        a caller on another loop (tests run one loop after another) takes over once the last one is closed
        or stopped, and until then gets its events handed over thread-safely."""
        current = self._events_loop
        if current is loop:
            return
        if current is not None and not current.is_closed():
            if current.is_running():
                return
            current.remove_reader(self._events.fileno())
        loop.add_reader(self._events.fileno(), self._read_events, loop)
        self._events_loop = loop

    def _read_events(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``, when the events socket is readable: hand every waiting message's events to their
        streams. Messages are whole (the runner writes each at once), so ``recv`` does not wait for long."""
        try:
            while self._events.poll():
                message = self._events.recv()
                if isinstance(message, Events):
                    self._deliver(message, loop)
        except (EOFError, OSError):  # the runner is gone; the control reader reports it
            loop.remove_reader(self._events.fileno())
            with self._lock:
                if self._events_loop is loop:
                    self._events_loop = None

    def _deliver(self, message: Events, loop: asyncio.AbstractEventLoop) -> None:
        """A decode step's events: straight into the queues of streams on ``loop`` (the running one),
        thread-safely into others'."""
        elsewhere = []
        for sink, item in self._take(message):
            if sink.loop is loop:
                sink.queue.put_nowait(item)
            else:
                elsewhere.append((sink, item))
        deliver(elsewhere)

    def _close_events(self) -> None:
        """Stop reading the events socket and close it, on the loop that reads it when that one still runs."""
        with self._lock:
            loop, self._events_loop = self._events_loop, None
        events = self._events
        if loop is None or loop.is_closed():
            events.close()
            return

        def unwatch() -> None:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(events.fileno())
            events.close()

        if loop.is_running():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: its selector is gone with it
                loop.call_soon_threadsafe(unwatch)
                return
        unwatch()

    def _take(self, message: Events) -> list[tuple[EventSink, Any]]:
        """The message's events with their streams; a cancelled stream's are dropped, and a stream is forgotten
        after its last event (Done or an error)."""
        batch = []
        with self._lock:
            for rid, item in message.items:
                sink = self._streams.get(rid)
                if sink is None:  # cancelled: the consumer is gone
                    continue
                if isinstance(item, Done | BaseException):
                    del self._streams[rid]
                batch.append((sink, item))
        return batch

    def _resolve(self, rid: int, *, value: Any) -> None:
        with self._lock:
            future = self._futures.pop(rid, None)
        if future is not None and not future.cancelled():
            future.set_result(value)

    def _fail(self, rid: int, error: BaseException) -> None:
        with self._lock:
            sink = self._streams.pop(rid, None)
            future = self._futures.pop(rid, None)
        if sink is not None:
            sink.put(error)
        if future is not None and not future.cancelled():
            future.set_exception(error)

    def _died(self) -> None:
        code = self._process.wait()
        with self._lock:
            self._alive = False
            closing = self._closing
            streams, self._streams = self._streams, {}
            futures, self._futures = self._futures, {}
        if not closing:
            log.error("model runner %d for %s exited unexpectedly (%s)", self.pid, self.params.model_path, _exit(code))
        error = InternalError("the model was unloaded") if closing else InternalError(self._dead_message(code))
        for sink in streams.values():
            sink.put(error)
        for future in futures.values():
            if not future.cancelled():
                future.set_exception(error)

    def _dead_message(self, code: int | None = None) -> str:
        if code is None:
            code = self._process.poll()
        how = _exit(code) if code is not None else "stopped"
        return f"the model runner stopped unexpectedly ({how}); the model reloads on the next request"


def _exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
