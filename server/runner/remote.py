"""The API side of a runner: :class:`RemoteModel` starts a runner process and forwards requests to it.

It offers what the inference service and the scheduler use of an :class:`~server.engine.EngineModel`
(``tokenize``, ``generate``, ``embed``, ``close`` and the facts ``/api/ps`` shows), so the service does not know
whether a model runs here or in a child. A reader thread hands each message to the request it belongs to:
generation events (a decode step's worth per message) into :class:`~server.engine.EventSink`s on their callers'
event loops, replies into futures.
When the runner dies, every request on it fails with an InternalError saying so, and ``alive`` turns False so
the scheduler replaces the runner on the next request.
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

    def __init__(self, params: LoadParams, process: subprocess.Popen[bytes], conn: Connection, loaded: Loaded) -> None:
        self.params = params
        self.facts: Facts = loaded.facts
        self.pid = loaded.pid
        self._process = process
        self._conn = conn
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
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "server.runner", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        try:
            ours.send(Load(params))
            reply: FromRunner = ours.recv()
        except (EOFError, OSError):
            code = process.wait()
            ours.close()
            raise ModelLoadFailed(
                f"the model runner exited while loading {params.model_path} ({_exit(code)})"
            ) from None
        except BaseException:
            process.kill()
            process.wait()
            ours.close()
            raise
        if isinstance(reply, Failed):
            process.wait()
            ours.close()
            raise reply.error
        assert isinstance(reply, Loaded)
        return cls(params, process, ours, reply)

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
        sink = EventSink(asyncio.get_running_loop())
        rid = next(self._ids)
        with self._lock:
            if not self._alive:
                raise InternalError(self._dead_message())
            self._streams[rid] = sink
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
            if isinstance(message, Events):
                self._deliver(message)
            elif isinstance(message, Reply):
                self._resolve(message.rid, value=message.value)
            elif isinstance(message, Failed) and message.rid is not None:
                self._fail(message.rid, message.error)
        self._died()

    def _deliver(self, message: Events) -> None:
        """A decode step's events, handed to their streams with one wake-up per event loop; a stream is
        forgotten after its last event (Done or an error)."""
        batch = []
        with self._lock:
            for rid, item in message.items:
                sink = self._streams.get(rid)
                if sink is None:  # cancelled: the consumer is gone
                    continue
                if isinstance(item, Done | BaseException):
                    del self._streams[rid]
                batch.append((sink, item))
        deliver(batch)

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
