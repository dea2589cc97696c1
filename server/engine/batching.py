"""Continuous batching: a decode loop per loaded model drives ``num_parallel`` slots over one llama context.

The process's compute thread runs the steps (see compute.py). Each step packs one token for every generating
slot plus prompt chunks of newly admitted requests (up to ``num_batch`` tokens in all) into a single
``llama_decode``, then samples every slot that produced logits with its own chain. Requests wait in a bounded
FIFO queue for a free slot and join between steps; finished or cancelled ones leave at once.

Every slot is one llama.cpp sequence (seq id = slot index) in a non-unified KV cache: each sequence has its own
``num_ctx`` cells, and a sequence's logits do not depend on its batch-mates (greedy output alone and in a batch
is identical). Busy slots are kept on the lowest seq ids and a batch lists them in seq order: that is what lets
llama.cpp run the whole batch as one micro-batch. After a request ends its slot keeps its cells, so a later
request starting with the same tokens (same system prompt, earlier chat turns) only evaluates the rest: the free
slot with the longest common prefix is chosen.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from server.errors import InternalError, ServerBusy

from .compute import ComputeThread
from .events import Done, DoneReason, Logprob, Token
from .params import SamplingParams
from .sampling import SamplerChain, logprob_of
from .stream import Sink
from .textstream import TextStream
from .weights import Weights

log = logging.getLogger(__name__)

DecodeFn = Callable[[Any, Any], int]
"""``llama_decode``'s shape: (context, batch) -> status, 0 on success."""


@dataclass(eq=False)
class Request:
    """A generation request: its (possibly truncated) prompt tokens, settings, sampler chain and consumer."""

    tokens: list[int]
    sampling: SamplingParams
    chain: SamplerChain
    sink: Sink
    truncated: bool = False
    cancelled: bool = False


@dataclass(eq=False)
class _Run:
    """The progress of one admitted request. It moves with the request when its slot is compacted."""

    request: Request
    text: TextStream
    pending: list[int]  # prompt tokens not evaluated yet
    prompt_eval_count: int
    next_token: int | None = None  # sampled, emitted, not yet decoded
    output: list[int] = field(default_factory=list)
    held_ids: list[int] = field(default_factory=list)
    held_logprobs: list[Logprob] = field(default_factory=list)
    eval_count: int = 0
    started_ns: int = 0
    first_token_ns: int = 0


@dataclass(eq=False)
class _Slot:
    """One llama.cpp sequence (seq id = index) and the tokens its KV cells hold, at positions 0..len-1."""

    seq: int
    cells: list[int] = field(default_factory=list)
    shifted: bool = False  # cells were moved by a context shift: not reusable as a prefix
    run: _Run | None = None


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class DecodeLoop:
    """The slots and queue of one llama context, stepped by the process's :class:`ComputeThread`.

    ``submit`` and ``cancel`` from any thread; ``close`` once."""

    def __init__(
        self,
        weights: Weights,
        ctx: Any,
        compute: ComputeThread,
        *,
        n_slots: int,
        n_ctx_slot: int,
        n_batch: int,
        max_queue: int,
    ) -> None:
        self._weights = weights
        self._ctx = ctx
        self._compute = compute
        self._mem = llama_cpp.llama_get_memory(ctx)
        self._can_shift = bool(llama_cpp.llama_memory_can_shift(self._mem))
        self.n_ctx_slot = n_ctx_slot
        self._n_batch = n_batch
        self._max_queue = max_queue
        self._slots = [_Slot(seq) for seq in range(n_slots)]
        self._active: list[_Slot] = []  # admission order
        self._waiting: deque[Request] = deque()
        self._closed = False
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        # The one llama.cpp call a step makes; an attribute so fault-injection tests can wrap it.
        self.decode_fn: DecodeFn = llama_cpp.llama_decode
        compute.attach(self)

    # -- any thread --

    @property
    def active_count(self) -> int:
        return len(self._active)

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    @property
    def busy_seqs(self) -> list[int]:
        """Seq ids of the slots running a request, ascending (packed from 0 between steps)."""
        return [s.seq for s in self._slots if s.run is not None]

    def submit(self, request: Request) -> None:
        """Queue a request. Raises ServerBusy when ``max_queue`` requests already wait for a slot."""
        with self._compute.lock:
            if self._closed:
                raise InternalError("the model is being unloaded")
            self._drop_cancelled_waiting()
            free = len(self._slots) - len(self._active)
            if len(self._waiting) >= free + self._max_queue:
                raise ServerBusy()
            self._waiting.append(request)
            self._compute.wake()

    def cancel(self, request: Request) -> None:
        """Mark a request cancelled (safe from any thread, even a finalizer: never blocks)."""
        request.cancelled = True
        if self._compute.lock.acquire(blocking=False):
            try:
                self._compute.wake()
            finally:
                self._compute.lock.release()

    def close(self) -> None:
        """Stop stepping; requests still running or waiting end with InternalError. Frees the batch."""
        with self._compute.lock:
            self._closed = True
        self._compute.detach(self)
        self._fail_all(InternalError("the model was unloaded"))
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None

    # -- compute thread --

    def prepare(self) -> bool:
        """Between steps, under the compute lock: admit waiting requests. True when a step has work."""
        if self._closed:
            return False
        self._drop_cancelled_waiting()
        self._admit()
        return bool(self._active)

    def crashed(self, detached: bool) -> None:
        """A step raised past its own guards (a bug): the requests it was running fail, their cells are dropped,
        and the loop goes on serving the queue; once ``detached`` from the compute thread, everything fails."""
        if detached:
            with self._compute.lock:
                self._closed = True
            self._fail_all(InternalError("the inference engine failed"))
            return
        for slot in list(self._active):
            self._fail(slot, InternalError("the inference engine failed while running this request"))

    def _fail_all(self, error: InternalError) -> None:
        """End every running and waiting request with ``error`` (the loop is no longer stepped)."""
        with self._compute.lock:
            waiting, self._waiting = list(self._waiting), deque()
        for slot in list(self._active):
            if slot.run is not None:
                slot.run.request.sink.put(error)
            self._clear_cells(slot)
            self._release(slot)
        for request in waiting:
            request.sink.put(error)
            request.chain.free()

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
        free = [s for s in self._slots if s.run is None]
        while free and self._waiting:
            request = self._waiting.popleft()
            # The longest reusable prefix wins; on a tie the lowest seq id, which keeps busy slots packed.
            slot = max(free, key=lambda s: (common_prefix(s.cells, request.tokens), -s.seq))
            free.remove(slot)
            reuse = min(common_prefix(slot.cells, request.tokens), len(request.tokens) - 1)
            if reuse < len(slot.cells):
                if not llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, reuse, -1):
                    self._clear_cells(slot)
                    reuse = 0
                del slot.cells[reuse:]
            pending = request.tokens[reuse:]
            slot.run = _Run(request, TextStream(request.sampling.stop), pending, len(pending))
            self._active.append(slot)

    def _compact(self) -> None:
        """Keep busy slots on the lowest seq ids by moving the highest busy one into the lowest free one.

        With one KV stream per sequence, llama.cpp splits a batch wherever its seq ids are not consecutive, and
        every split is one more pass over the weights (a gap in 8 slots made a step ~40% slower). A move copies
        the sequence's KV stream (exact, so outputs do not change); the old slot keeps its cells as a prefix cache.
        """
        while True:
            hole = next((s for s in self._slots if s.run is None), None)
            top = next((s for s in reversed(self._slots) if s.run is not None), None)
            if hole is None or top is None or hole.seq > top.seq:
                return
            llama_cpp.llama_memory_seq_rm(self._mem, hole.seq, -1, -1)
            llama_cpp.llama_memory_seq_cp(self._mem, top.seq, hole.seq, -1, -1)
            hole.cells, hole.shifted, hole.run = list(top.cells), top.shifted, top.run
            top.run = None
            if top.shifted:
                self._clear_cells(top)
            self._active[self._active.index(top)] = hole

    def _clear_cells(self, slot: _Slot) -> None:
        llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
        slot.cells.clear()
        slot.shifted = False

    def step(self) -> None:
        """One decode: a token for every generating slot and prompt chunks, in seq id order (see _compact)."""
        now = time.perf_counter_ns()
        for slot in list(self._active):
            if slot.run is not None and slot.run.request.cancelled:
                self._release(slot)
        self._compact()
        feeds: dict[int, list[int]] = {}  # seq -> tokens for this step
        generating = 0
        for slot in list(self._active):
            run = slot.run
            if run is None or run.next_token is None:
                continue
            if len(slot.cells) >= self.n_ctx_slot and not self._make_room(slot):
                self._finish(slot, "length")
                continue
            feeds[slot.seq] = [run.next_token]
            generating += 1
        # Prompts share what is left of the batch (num_batch tokens a step, Ollama's meaning). Smaller steps would
        # keep the others' tokens flowing more evenly while a prompt is evaluated, at a cost in tokens/s; a
        # Modelfile's num_batch makes that trade (README: "Side by side").
        budget = self._n_batch - generating
        for slot in self._active:  # prompts get the budget in admission order
            run = slot.run
            if budget <= 0:
                break
            if run is None or not run.pending:
                continue
            if not run.started_ns:
                run.started_ns = now
            feeds[slot.seq] = run.pending[:budget]
            del run.pending[:budget]
            budget -= len(feeds[slot.seq])
        if not feeds:
            return
        starts = {seq: len(self._slots[seq].cells) for seq in feeds}
        outputs = self._fill(feeds)
        if self._decode():
            self._sample(outputs)
        else:
            self._isolate(feeds, starts)

    def _fill(self, feeds: dict[int, list[int]]) -> list[tuple[_Slot, int]]:
        """Put ``feeds`` into the batch in seq order; returns the (slot, batch index) pairs to sample after."""
        batch = self._batch
        n = 0
        outputs: list[tuple[_Slot, int]] = []
        for seq in sorted(feeds):
            slot = self._slots[seq]
            run = slot.run
            assert run is not None
            for token in feeds[seq]:
                self._put(batch, n, token, len(slot.cells), seq)
                slot.cells.append(token)
                n += 1
            if not run.pending:  # a generated token, or the prompt's last chunk: sample after it
                batch.logits[n - 1] = 1
                outputs.append((slot, n - 1))
        batch.n_tokens = n
        return outputs

    def _decode(self) -> bool:
        """Run the batch; False when llama.cpp refused or failed it (its cells are then in an unknown state)."""
        try:
            rc = int(self.decode_fn(self._ctx, self._batch))
        except Exception:
            log.exception("llama_decode raised")
            return False
        if rc != 0:
            log.error("llama_decode failed with %d", rc)
        return rc == 0

    def _sample(self, outputs: list[tuple[_Slot, int]]) -> None:
        done_ns = time.perf_counter_ns()
        for slot, index in outputs:
            run = slot.run
            if run is None:
                continue
            try:
                self._on_logits(slot, run, index, done_ns)
            except Exception:  # one request's sampler failing (a grammar, a bug) ends that request only
                log.exception("sampling failed")
                self._fail(slot, InternalError("sampling failed for this request"))

    def _isolate(self, feeds: dict[int, list[int]], starts: dict[int, int]) -> None:
        """A failed batch: roll every sequence back to where the step began, then decode each one alone, so a
        sequence that cannot be evaluated fails by itself and its batch-mates go on (and keep their caches)."""
        for seq, start in starts.items():
            self._rollback(self._slots[seq], start)
        for seq in sorted(feeds):
            slot = self._slots[seq]
            if slot.run is None:
                continue
            outputs = self._fill({seq: feeds[seq]})
            if self._decode():
                self._sample(outputs)
            else:
                self._fail(slot, InternalError("llama.cpp could not evaluate this request"))

    def _rollback(self, slot: _Slot, start: int) -> None:
        llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, start, -1)
        del slot.cells[start:]

    def _fail(self, slot: _Slot, error: InternalError) -> None:
        """End the slot's request with ``error``; its cells are dropped (they may be half-written)."""
        if slot.run is not None:
            slot.run.request.sink.put(error)
        self._clear_cells(slot)
        self._release(slot)

    @staticmethod
    def _put(batch: Any, i: int, token: int, pos: int, seq: int) -> None:
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = False

    def _make_room(self, slot: _Slot) -> bool:
        """Context shift: keep ``num_keep`` tokens, drop half of the rest, slide the remainder down."""
        assert slot.run is not None
        sampling = slot.run.request.sampling
        if not sampling.shift or sampling.num_predict == -2 or not self._can_shift:
            return False
        n_past = len(slot.cells)
        keep = max(0, min(sampling.num_keep, n_past - 2))
        discard = (n_past - keep) // 2
        if discard <= 0:
            return False
        llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, keep, keep + discard)
        llama_cpp.llama_memory_seq_add(self._mem, slot.seq, keep + discard, n_past, -discard)
        del slot.cells[keep : keep + discard]
        slot.shifted = True
        return True

    def _on_logits(self, slot: _Slot, run: _Run, index: int, now: int) -> None:
        request = run.request
        sampling = request.sampling
        token = request.chain.sample(self._ctx, index)
        if not run.first_token_ns:
            run.first_token_ns = now
        run.eval_count += 1
        if not sampling.ignore_eos and self._weights.is_eog(token):
            self._finish(slot, "stop")
            return
        run.output.append(token)
        run.held_ids.append(token)
        if sampling.logprobs:
            run.held_logprobs.append(logprob_of(self._ctx, self._weights, index, token, sampling.top_logprobs))
        text, stopped = run.text.push(self._weights.piece(token))
        if text:
            self._emit(run, text)
        if stopped:
            self._finish(slot, "stop", flush=False)
        elif 0 < sampling.num_predict <= run.eval_count or (
            sampling.num_predict == -2 and len(slot.cells) >= self.n_ctx_slot
        ):
            self._finish(slot, "length")
        else:
            run.next_token = token

    @staticmethod
    def _emit(run: _Run, text: str) -> None:
        event = Token(text, tuple(run.held_ids), tuple(run.held_logprobs))
        run.held_ids.clear()
        run.held_logprobs.clear()
        if not run.request.sink.put(event):
            run.request.cancelled = True

    def _finish(self, slot: _Slot, reason: DoneReason, *, flush: bool = True) -> None:
        run = slot.run
        assert run is not None
        if flush:
            rest = run.text.flush()
            if rest:
                self._emit(run, rest)
        end = time.perf_counter_ns()
        first = run.first_token_ns or end
        done = Done(
            done_reason=reason,
            prompt_eval_count=run.prompt_eval_count,
            prompt_eval_duration_ns=first - (run.started_ns or first),
            eval_count=run.eval_count,
            eval_duration_ns=end - first,
            context=tuple(run.request.tokens) + tuple(run.output),
            truncated=run.request.truncated,
            prompt_tokens=len(run.request.tokens),
        )
        sink = run.request.sink
        self._release(slot)  # first: a consumer that sees Done sees the slot free
        sink.put(done)

    def _release(self, slot: _Slot) -> None:
        """Free the slot. Its cells stay as a prefix cache (a prompt cut short still left a valid prefix), unless
        a context shift moved them: those were computed at other positions than a fresh evaluation would use."""
        if slot.run is not None:
            slot.run.request.chain.free()
            slot.run = None
        if slot.shifted:
            self._clear_cells(slot)
        if slot in self._active:
            self._active.remove(slot)
