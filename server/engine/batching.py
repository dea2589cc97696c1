"""Continuous batching: one decode thread per loaded model drives ``num_parallel`` slots over one llama context.

Each step packs one token for every generating slot plus prompt chunks of newly admitted requests into a single
``llama_decode``, then samples every slot that produced logits with its own chain. Requests wait in a bounded
FIFO queue for a free slot and join between steps; finished or cancelled ones leave at once.

Every slot is one llama.cpp sequence (seq id = slot index) in a non-unified KV cache: each sequence has its own
``num_ctx`` cells, and a sequence's logits do not depend on its batch-mates (greedy output alone and in a batch
is identical). After a request ends its slot keeps its cells, so a later request starting with the same tokens
(same system prompt, earlier chat turns) only evaluates the rest: the free slot with the longest common prefix
is chosen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import llama_cpp

from server.errors import InternalError, ServerBusy

from .events import Done, DoneReason, Logprob, Token
from .params import SamplingParams
from .sampling import SamplerChain, logprob_of
from .stream import EventSink
from .textstream import TextStream
from .weights import Weights

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(eq=False)
class Request:
    """A generation request: its (possibly truncated) prompt tokens, settings, sampler chain and consumer."""

    tokens: list[int]
    sampling: SamplingParams
    chain: SamplerChain
    sink: EventSink
    truncated: bool = False
    cancelled: bool = False


@dataclass(eq=False)
class _Slot:
    seq: int
    cells: list[int] = field(default_factory=list)  # tokens whose KV cells this sequence holds, at 0..len-1
    request: Request | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens not evaluated yet
    next_token: int | None = None  # sampled, emitted, not yet decoded
    text: TextStream | None = None
    output: list[int] = field(default_factory=list)
    held_ids: list[int] = field(default_factory=list)
    held_logprobs: list[Logprob] = field(default_factory=list)
    prompt_eval_count: int = 0
    eval_count: int = 0
    started_ns: int = 0
    first_token_ns: int = 0
    shifted: bool = False


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class DecodeLoop:
    """The decode thread of one llama context. ``submit`` from any thread; ``close`` once."""

    def __init__(
        self,
        weights: Weights,
        ctx: Any,
        *,
        n_slots: int,
        n_ctx_slot: int,
        n_batch: int,
        max_queue: int,
        name: str,
    ) -> None:
        self._weights = weights
        self._ctx = ctx
        self._mem = llama_cpp.llama_get_memory(ctx)
        self._can_shift = bool(llama_cpp.llama_memory_can_shift(self._mem))
        self.n_ctx_slot = n_ctx_slot
        self._n_batch = n_batch
        # While other slots are generating, a prompt advances in smaller chunks so their tokens keep flowing.
        self._busy_chunk = max(n_slots, n_batch // 4)
        self._max_queue = max_queue
        self._slots = [_Slot(seq) for seq in range(n_slots)]
        self._active: list[_Slot] = []  # admission order
        self._waiting: deque[Request] = deque()
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._thread = threading.Thread(target=self._run, name=f"corral-decode-{name}", daemon=True)
        self._thread.start()

    # -- any thread --

    @property
    def active_count(self) -> int:
        return len(self._active)

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    def submit(self, request: Request) -> None:
        """Queue a request. Raises ServerBusy when ``max_queue`` requests already wait for a slot."""
        with self._cond:
            if self._stopping:
                raise InternalError("the model is being unloaded")
            self._drop_cancelled_waiting()
            free = len(self._slots) - len(self._active)
            if len(self._waiting) >= free + self._max_queue:
                raise ServerBusy()
            self._waiting.append(request)
            self._cond.notify()

    def call(self, job: Callable[[], T]) -> Future[T]:
        """Run ``job`` on the decode thread between two steps (embeddings use this).

        All llama.cpp compute of a model stays on one thread on purpose: with OpenMP builds every thread that
        runs a graph keeps its own pool of spinning workers, and once the pools hold more threads than there are
        CPUs libgomp stops spin-waiting, which made decoding about 40% slower on 2 cores."""
        future: Future[T] = Future()
        with self._cond:
            if self._stopping:
                raise InternalError("the model was unloaded")
            self._jobs.append((job, future))
            self._cond.notify()
        return future

    def cancel(self, request: Request) -> None:
        """Mark a request cancelled (safe from any thread, even a finalizer: never blocks)."""
        request.cancelled = True
        if self._cond.acquire(blocking=False):
            try:
                self._cond.notify()
            finally:
                self._cond.release()

    def close(self) -> None:
        """Stop the thread; requests still running or waiting end with InternalError. Frees the batch."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()
        self._fail_all(InternalError("the model was unloaded"))
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None

    # -- decode thread --

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    self._drop_cancelled_waiting()
                    while not self._stopping and not self._waiting and not self._active and not self._jobs:
                        self._cond.wait()
                    if self._stopping:
                        return
                    self._admit()
                    jobs = list(self._jobs)
                    self._jobs.clear()
                for job, future in jobs:
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(job())
                        except BaseException as exc:  # handed to the caller
                            future.set_exception(exc)
                self._step()
        except Exception:  # a bug or a llama.cpp failure: fail the requests, never hang their consumers
            log.exception("decode loop crashed")
            with self._cond:
                self._stopping = True
            self._fail_all(InternalError("the inference engine failed"))

    def _fail_all(self, error: InternalError) -> None:
        """End every running, waiting and queued piece of work with ``error`` (the loop no longer runs)."""
        with self._cond:
            waiting, self._waiting = list(self._waiting), deque()
            jobs, self._jobs = list(self._jobs), deque()
        for slot in list(self._active):
            if slot.request is not None:
                slot.request.sink.put(error)
            self._clear_cells(slot)
            self._release(slot)
        for request in waiting:
            request.sink.put(error)
            request.chain.free()
        for _, future in jobs:
            if future.set_running_or_notify_cancel():
                future.set_exception(error)

    def _drop_cancelled_waiting(self) -> None:
        if any(r.cancelled for r in self._waiting):
            keep: deque[Request] = deque()
            for request in self._waiting:
                if request.cancelled:
                    request.chain.free()
                else:
                    keep.append(request)
            self._waiting = keep

    def _admit(self) -> None:
        free = [s for s in self._slots if s.request is None]
        while free and self._waiting:
            request = self._waiting.popleft()
            slot = max(free, key=lambda s: (common_prefix(s.cells, request.tokens), -len(s.cells)))
            free.remove(slot)
            reuse = min(common_prefix(slot.cells, request.tokens), len(request.tokens) - 1)
            if reuse < len(slot.cells):
                if not llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, reuse, -1):
                    self._clear_cells(slot)
                    reuse = 0
                del slot.cells[reuse:]
            slot.request = request
            slot.pending = request.tokens[reuse:]
            slot.prompt_eval_count = len(slot.pending)
            slot.text = TextStream(request.sampling.stop)
            self._active.append(slot)

    def _clear_cells(self, slot: _Slot) -> None:
        llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
        slot.cells.clear()

    def _step(self) -> None:
        now = time.perf_counter_ns()
        for slot in list(self._active):
            if slot.request is not None and slot.request.cancelled:
                self._release(slot)
        batch = self._batch
        n = 0
        outputs: list[tuple[_Slot, int]] = []
        for slot in list(self._active):
            token = slot.next_token
            if token is None:
                continue
            if len(slot.cells) >= self.n_ctx_slot and not self._make_room(slot):
                self._finish(slot, "length")
                continue
            self._put(batch, n, token, len(slot.cells), slot.seq, True)
            slot.cells.append(token)
            outputs.append((slot, n))
            n += 1
        budget = self._n_batch - n
        if n:
            budget = min(budget, self._busy_chunk)
        for slot in self._active:
            if budget <= 0:
                break
            if not slot.pending:
                continue
            if not slot.started_ns:
                slot.started_ns = now
            chunk = slot.pending[:budget]
            del slot.pending[:budget]
            for token in chunk:
                self._put(batch, n, token, len(slot.cells), slot.seq, False)
                slot.cells.append(token)
                n += 1
            budget -= len(chunk)
            if not slot.pending:
                batch.logits[n - 1] = 1
                outputs.append((slot, n - 1))
        if n == 0:
            return
        batch.n_tokens = n
        rc = int(llama_cpp.llama_decode(self._ctx, batch))
        if rc != 0:
            self._decode_failed(rc, outputs)
            return
        done_ns = time.perf_counter_ns()
        for slot, index in outputs:
            if slot.request is not None:
                self._on_logits(slot, index, done_ns)

    @staticmethod
    def _put(batch: Any, i: int, token: int, pos: int, seq: int, logits: bool) -> None:
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = logits

    def _decode_failed(self, rc: int, outputs: list[tuple[_Slot, int]]) -> None:
        log.error("llama_decode failed with %d", rc)
        error = InternalError(f"llama_decode failed ({rc})")
        # Cells of every slot in the batch are now unknown: drop them and fail those requests.
        for slot in list(self._active):
            if slot.request is not None and (slot.next_token is not None or slot.started_ns):
                slot.request.sink.put(error)
                self._clear_cells(slot)
                self._release(slot)

    def _make_room(self, slot: _Slot) -> bool:
        """Context shift: keep ``num_keep`` tokens, drop half of the rest, slide the remainder down."""
        request = slot.request
        if request is None or not request.sampling.shift or request.sampling.num_predict == -2:
            return False
        if not self._can_shift:
            return False
        n_past = len(slot.cells)
        keep = max(0, min(request.sampling.num_keep, n_past - 2))
        discard = (n_past - keep) // 2
        if discard <= 0:
            return False
        llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, keep, keep + discard)
        llama_cpp.llama_memory_seq_add(self._mem, slot.seq, keep + discard, n_past, -discard)
        del slot.cells[keep : keep + discard]
        slot.shifted = True
        return True

    def _on_logits(self, slot: _Slot, index: int, now: int) -> None:
        request = slot.request
        assert request is not None and slot.text is not None
        sampling = request.sampling
        token = request.chain.sample(self._ctx, index)
        if not slot.first_token_ns:
            slot.first_token_ns = now
        slot.eval_count += 1
        if not sampling.ignore_eos and self._weights.is_eog(token):
            self._finish(slot, "stop")
            return
        slot.output.append(token)
        slot.held_ids.append(token)
        if sampling.logprobs:
            slot.held_logprobs.append(logprob_of(self._ctx, self._weights, index, token, sampling.top_logprobs))
        text, stopped = slot.text.push(self._weights.piece(token))
        if text:
            self._emit(slot, text)
        if stopped:
            self._finish(slot, "stop", flush=False)
        elif 0 < sampling.num_predict <= slot.eval_count or (
            sampling.num_predict == -2 and len(slot.cells) >= self.n_ctx_slot
        ):
            self._finish(slot, "length")
        else:
            slot.next_token = token

    def _emit(self, slot: _Slot, text: str) -> None:
        assert slot.request is not None
        event = Token(text, tuple(slot.held_ids), tuple(slot.held_logprobs))
        slot.held_ids.clear()
        slot.held_logprobs.clear()
        if not slot.request.sink.put(event):
            slot.request.cancelled = True

    def _finish(self, slot: _Slot, reason: DoneReason, *, flush: bool = True) -> None:
        request = slot.request
        assert request is not None and slot.text is not None
        if flush:
            rest = slot.text.flush()
            if rest:
                self._emit(slot, rest)
        end = time.perf_counter_ns()
        first = slot.first_token_ns or end
        done = Done(
            done_reason=reason,
            prompt_eval_count=slot.prompt_eval_count,
            prompt_eval_duration_ns=first - (slot.started_ns or first),
            eval_count=slot.eval_count,
            eval_duration_ns=end - first,
            context=tuple(request.tokens) + tuple(slot.output),
            truncated=request.truncated,
        )
        request.sink.put(done)
        self._release(slot)

    def _release(self, slot: _Slot) -> None:
        if slot.request is not None:
            slot.request.chain.free()
        if slot.shifted:
            # Shifted cells were computed at other positions; reusing them would not match a fresh evaluation.
            self._clear_cells(slot)
        elif slot.pending:
            # A prompt cut short: cells already hold its evaluated part, which is still a valid prefix.
            pass
        slot.request = None
        slot.pending = []
        slot.next_token = None
        slot.text = None
        slot.output = []
        slot.held_ids = []
        slot.held_logprobs = []
        slot.prompt_eval_count = slot.eval_count = 0
        slot.started_ns = slot.first_token_ns = 0
        slot.shifted = False
        if slot in self._active:
            self._active.remove(slot)
