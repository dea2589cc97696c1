"""The compute thread: the one thread of a process that runs llama.cpp graphs, for every loaded model.

Why one thread for all models: llama.cpp built with OpenMP (the default on Linux) gives every thread that runs a
graph its own pool of OpenMP workers. Once the pools of a process hold more threads than there are CPUs, libgomp
stops spin-waiting at its barriers and sleeps instead, and every decode gets about 40% slower (measured on 2
cores). So models loaded side by side take turns here: each turn is one decode step of one model, round robin, so
a busy model never starves another, and embeddings run between steps.

A :class:`Worker` (a model's decode loop) is attached once and detached when its model unloads. Workers keep
their queues under :attr:`ComputeThread.lock`, which is also how they wake the thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from server.errors import InternalError

from .clock import StepClock

log = logging.getLogger(__name__)

T = TypeVar("T")


class Worker(Protocol):
    """What the compute thread drives: a model's decode loop."""

    def prepare(self) -> bool:
        """Under the lock, between steps: take in queued work. True when there is a step to run."""
        ...

    def step(self) -> None:
        """Outside the lock: run one decode step."""
        ...

    def crashed(self, detached: bool) -> None:
        """``step`` raised: fail the requests that step was running; the worker stays attached. With ``detached``
        (``prepare`` raised, so the worker was dropped), fail every request it holds, waiting ones too."""
        ...


class StepListener(Protocol):
    """Told, on the compute thread, when a step or job begins and ends (``ended`` also after one that raised)."""

    def began(self) -> None: ...

    def ended(self) -> None: ...


class ComputeThread:
    """Runs the steps of attached workers and ad-hoc jobs, one at a time. Close it once, after its workers.

    With ``timed`` (the default) every step and job is timed on :attr:`clock` (``server.engine.clock``); a
    ``listener`` hears when each begins and ends (a runner process batches a step's events for sending so).
    """

    def __init__(
        self, name: str = "corral-compute", *, timed: bool = True, listener: StepListener | None = None
    ) -> None:
        self.lock = threading.Condition()
        self.clock = StepClock()
        self._timed = timed
        self._listener = listener
        self._workers: list[Worker] = []
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def attach(self, worker: Worker) -> None:
        with self.lock:
            if self._stopping:
                raise InternalError("the inference engine is shutting down")
            self._workers.append(worker)
            self.lock.notify()

    def detach(self, worker: Worker) -> None:
        """Forget ``worker``; when this returns, none of its steps runs or will run. Blocks until the thread is
        between two steps (at most one decode step)."""
        self.run(lambda: self._forget(worker))

    def _forget(self, worker: Worker) -> None:
        with self.lock:
            if worker in self._workers:
                self._workers.remove(worker)

    def call(self, job: Callable[[], T]) -> Future[T]:
        """Run ``job`` on the compute thread between two steps; its result or exception lands in the future.
        Raises InternalError once the thread is shutting down."""
        future: Future[T] = Future()
        with self.lock:
            if self._stopping:
                raise InternalError("the inference engine is shutting down")
            self._jobs.append((job, future))
            self.lock.notify()
        return future

    def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` between two steps and wait for it: on the compute thread, or directly when called from that
        thread or once it has stopped (freeing llama.cpp objects must work during shutdown too)."""
        if threading.current_thread() is not self._thread:
            with self.lock:
                stopping = self._stopping
            if not stopping:
                return self.call(job).result()
            self._thread.join()
        return job()

    def wake(self) -> None:
        """Call with :attr:`lock` held after queueing work for a worker."""
        self.lock.notify()

    def close(self) -> None:
        """Stop the thread once the jobs already queued have run; attached workers are not stepped any more."""
        with self.lock:
            self._stopping = True
            self.lock.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        ready: list[Worker] = []
        while True:
            with self.lock:
                while not self._stopping and not self._jobs and not ready:
                    ready = self._ready()
                    if not ready and not self._jobs:
                        self.lock.wait()
                jobs, self._jobs = list(self._jobs), deque()
                stopping = self._stopping
            self._run_jobs(jobs)
            if stopping:
                return
            if jobs:  # a job may have detached a worker or changed its queue
                with self.lock:
                    ready = self._ready()
            for worker in ready:
                self._step(worker)
            with self.lock:
                ready = self._ready()

    def _ready(self) -> list[Worker]:
        """Workers with a step to run (under the lock). A worker whose ``prepare`` raises is a bug: it is
        detached and its requests fail; the thread, and every other model, goes on."""
        ready = []
        for worker in list(self._workers):
            try:
                if worker.prepare():
                    ready.append(worker)
            except Exception:
                log.exception("preparing a decode step failed; detaching that model")
                self._workers.remove(worker)
                self._crashed(worker, detached=True)
        return ready

    def _step(self, worker: Worker) -> None:
        self._begin()
        try:
            worker.step()
        except Exception:  # a bug past the step's own guards: the step's requests fail, the rest go on
            log.exception("decode step crashed")
            self._crashed(worker, detached=False)
        finally:
            self._end()

    def _begin(self) -> None:
        if self._timed:
            self.clock.begin()
        if self._listener is not None:
            self._listener.began()

    def _end(self) -> None:
        if self._timed:
            self.clock.end()
        if self._listener is not None:
            try:
                self._listener.ended()
            except Exception:
                log.exception("a step listener failed")

    @staticmethod
    def _crashed(worker: Worker, *, detached: bool) -> None:
        try:
            worker.crashed(detached)
        except Exception:
            log.exception("failing the requests of a crashed step failed too")

    def _run_jobs(self, jobs: list[tuple[Callable[[], Any], Future[Any]]]) -> None:
        for job, future in jobs:
            if future.set_running_or_notify_cancel():
                self._begin()
                try:
                    future.set_result(job())
                except BaseException as exc:  # handed to the caller
                    future.set_exception(exc)
                finally:
                    self._end()
