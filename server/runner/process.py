"""The runner process: load one model, then serve the API process's requests until told to stop or orphaned.

One asyncio loop runs the requests; a reader thread turns incoming messages into calls on that loop. A
generation's events do not pass through the loop: the compute thread hands them to the :class:`Outbox`, which
sends each decode step's events in one message on the events socket (:mod:`server.runner.outbox`).
Tokenizing runs in worker threads, off the loop. The process ends when the API process says
:class:`Shutdown` or its end of the control socket closes (the API process died): a runner never outlives
its server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from server.engine import EngineModel
from server.engine.compute import ComputeThread
from server.errors import ApiError, InternalError

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
from .outbox import Outbox, RequestSink

log = logging.getLogger("server.runner")

RUNNER_NICENESS = 5


def main(argv: Sequence[str]) -> int:
    """Entry point: ``argv`` holds the inherited sockets' file descriptors: the control socket (requests in,
    replies out), then the events socket (generation events out)."""
    logging.basicConfig(level=os.environ.get("CORRAL_RUNNER_LOG", "WARNING"), format="runner: %(message)s")
    conn = Connection(int(argv[0]))
    events = Connection(int(argv[1]))
    # Below the API process: decoding takes every core it can, and the server must still answer at once.
    with contextlib.suppress(OSError):
        os.nice(RUNNER_NICENESS)
    message = conn.recv()
    assert isinstance(message, Load)
    server = _Server(conn, events)
    compute = ComputeThread(listener=server.outbox)
    try:
        model = EngineModel.load(message.params, compute)
    except Exception as exc:
        compute.close()
        conn.send(Failed(None, portable(exc)))
        return 1
    try:
        facts = Facts(
            context_length=model.context_length,
            size_bytes=model.size_bytes,
            vram_bytes=model.vram_bytes,
            num_parallel=model.num_parallel,
            embedding_length=model.embedding_length,
        )
        conn.send(Loaded(facts, os.getpid()))
        asyncio.run(server.serve(model))
    finally:
        model.close()
        compute.close()
    return 0


def portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling as itself, else an InternalError with its text."""
    if isinstance(error, ApiError):
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:
            return InternalError(error.message)
        return error
    return InternalError(f"{type(error).__name__}: {error}")


class _Server:
    def __init__(self, conn: Connection, events: Connection) -> None:
        self.conn = conn
        self.events = events
        self.send_lock = threading.Lock()
        self.events_lock = threading.Lock()
        self.outbox = Outbox(self.send_events, portable)
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.generations: dict[int, Callable[[], None]] = {}  # rid -> cancel; dropped after the last event
        self.stopped: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._model: EngineModel | None = None

    @property
    def model(self) -> EngineModel:
        assert self._model is not None
        return self._model

    async def serve(self, model: EngineModel) -> None:
        self._model = model
        self.loop = loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        reader = threading.Thread(target=self._read, args=(loop,), name="runner-reader", daemon=True)
        reader.start()
        await self.stopped.wait()
        for cancel in list(self.generations.values()):
            cancel()
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                message: ToRunner = self.conn.recv()
            except (EOFError, OSError):  # the API process is gone
                message = Shutdown()
            loop.call_soon_threadsafe(self._dispatch, message)
            if isinstance(message, Shutdown):
                return

    def send(self, message: FromRunner) -> None:
        # OSError/ValueError: the API process is gone; the reader ends the loop.
        with self.send_lock, contextlib.suppress(OSError, ValueError):
            self.conn.send(message)

    def send_events(self, message: Events) -> None:
        with self.events_lock, contextlib.suppress(OSError, ValueError):
            self.events.send(message)

    def _dispatch(self, message: ToRunner) -> None:
        if isinstance(message, Generate):
            self._generate(message)
        elif isinstance(message, Cancel):
            cancel = self.generations.pop(message.rid, None)
            if cancel is not None:
                cancel()
        elif isinstance(message, Embed):
            self._start(message.rid, lambda: self._embed(message))
        elif isinstance(message, Tokenize):
            self._start(message.rid, lambda: self._tokenize(message))
        elif isinstance(message, Probe):
            self._start(message.rid, lambda: self._probe(message))
        elif isinstance(message, Shutdown):
            assert self.stopped is not None
            self.stopped.set()

    def _start(self, rid: int, work: Callable[[], Any]) -> None:
        async def run() -> None:
            try:
                await work()
            except asyncio.CancelledError:
                pass
            except Exception as exc:
                if not isinstance(exc, ApiError):
                    log.exception("request %d failed", rid)
                self.send(Failed(rid, portable(exc)))
            finally:
                self.tasks.pop(rid, None)

        self.tasks[rid] = asyncio.get_running_loop().create_task(run())

    def _generate(self, message: Generate) -> None:
        """Start a generation; its events go out through the outbox. A refusal (a full queue, a bad option) is
        its one and only answer."""
        rid = message.rid
        sink = RequestSink(rid, self.outbox, self._finished)
        try:
            self.generations[rid] = self.model.start(message.tokens, message.sampling, sink)
        except Exception as exc:
            if not isinstance(exc, ApiError):
                log.exception("request %d failed", rid)
            self.send(Failed(rid, portable(exc)))

    def _finished(self, rid: int) -> None:
        # On the compute thread, maybe before ``_generate`` (on the loop) registered the cancel: drop it there.
        assert self.loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: the process is ending
            self.loop.call_soon_threadsafe(self.generations.pop, rid, None)

    async def _embed(self, message: Embed) -> None:
        value = await self.model.embed(message.texts, message.truncate)
        self.send(Reply(message.rid, value))

    async def _probe(self, message: Probe) -> None:
        self.send(Reply(message.rid, await self.model.step_stats()))

    async def _tokenize(self, message: Tokenize) -> None:
        tokens = await asyncio.to_thread(self.model.tokenize, message.text, add_special=message.add_special)
        self.send(Reply(message.rid, tokens))
