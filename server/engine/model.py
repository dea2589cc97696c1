"""One loaded model: weights, a generation context driven by a decode loop, and (lazily) an embedding context.

This is the engine's public face. The scheduler loads an :class:`EngineModel` per (model, load options), calls
:meth:`EngineModel.generate` / :meth:`EngineModel.embed`, and :meth:`EngineModel.close` when it unloads. All
models of a process share one :class:`ComputeThread` (the server's); a model loaded without one gets its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import llama_cpp

from server.errors import BadRequest, CapabilityError, InternalError, ModelLoadFailed
from server.memory import loaded_model_bytes

from .batching import DecodeFn, DecodeLoop, Request
from .clock import StepStats
from .compute import ComputeThread
from .cpus import default_threads
from .embedding import Embedder
from .params import LoadParams, SamplingParams
from .sampling import SamplerChain
from .stream import EventSink, EventStream, Sink
from .weights import Weights

log = logging.getLogger(__name__)

S = TypeVar("S", bound=Sink)

_KV_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0, "q4_0": llama_cpp.GGML_TYPE_Q4_0}
_INPUT_TOO_LONG = "the input length exceeds the context length"


class EngineModel:
    """A model ready to serve. Create with :meth:`load` (blocking: run it in a worker thread).

    Thread-safety: ``generate`` must be called on a running event loop (events are delivered to it); ``embed`` is
    a coroutine; ``close`` may be called from any thread, once every consumer is done or may be failed.
    """

    def __init__(self, params: LoadParams, weights: Weights, compute: ComputeThread, owns_compute: bool) -> None:
        self.params = params
        self._weights = weights
        self._compute = compute
        self._owns_compute = owns_compute
        # More threads than CPUs only slows every model of the process (OpenMP stops spinning): clamped.
        self._threads = min(params.num_thread, os.cpu_count() or 1) if params.num_thread else default_threads()
        self._ctx: Any = None
        self._loop: DecodeLoop | None = None
        self._adapters: list[Any] = []
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        self._closed = False
        num_ctx = params.num_ctx
        if 0 < weights.n_ctx_train < num_ctx:
            log.info(
                "num_ctx %d exceeds the model's training context %d; using %d",
                num_ctx,
                weights.n_ctx_train,
                weights.n_ctx_train,
            )
            num_ctx = weights.n_ctx_train
        self.context_length = num_ctx
        self._kv_type = params.kv_cache_type
        if self._kv_type != "f16" and params.flash_attention is False:
            log.warning("kv cache type %s needs flash attention; using f16", self._kv_type)
            self._kv_type = "f16"

    @classmethod
    def load(cls, params: LoadParams, compute: ComputeThread | None = None) -> EngineModel:
        """Load weights and create the contexts; their compute runs on ``compute`` (a private compute thread
        when None, stopped by :meth:`close`). Raises ModelLoadFailed (file not loadable, context not creatable)
        or InvalidOption (bad params); nothing stays allocated after a failure."""
        params.validate()
        owns = compute is None
        weights = Weights(params)
        model = cls(params, weights, compute or ComputeThread(), owns)
        try:
            model._load_adapters()
            if params.embedding:
                model._embedder = Embedder(weights, num_ctx=model.context_length, threads=model._threads)
            else:
                model._start_generation()
        except BaseException:
            model.close()
            raise
        return model

    def _load_adapters(self) -> None:
        for path in self.params.adapter_paths:
            adapter = llama_cpp.llama_adapter_lora_init(self._weights.model, path.encode())
            if not adapter:
                raise ModelLoadFailed(f"unable to load adapter {path}")
            self._adapters.append(adapter)

    def _start_generation(self) -> None:
        p = self.params
        # A batch larger than the cells it could fill only allocates memory: clamped to the context.
        n_batch = min(max(p.num_batch, p.num_parallel), self.context_length * p.num_parallel)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = self.context_length * p.num_parallel
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = p.num_parallel
        # One KV stream per slot: a sequence's numbers never depend on its batch-mates, and attention only
        # scans the slot's own cells.
        cparams.kv_unified = False
        cparams.n_threads = self._threads
        cparams.n_threads_batch = self._threads
        if p.flash_attention is None and self._kv_type == "f16":
            cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        elif p.flash_attention is False:
            cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        else:  # forced on, or needed by a quantized cache
            cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        cparams.type_k = _KV_TYPES[self._kv_type]
        cparams.type_v = _KV_TYPES[self._kv_type]
        cparams.no_perf = True
        ctx = llama_cpp.llama_init_from_model(self._weights.model, cparams)
        if not ctx:
            raise ModelLoadFailed(f"unable to create a context for {self._weights.path} (num_ctx {p.num_ctx})")
        self._ctx = ctx
        if self._adapters:
            array = (llama_cpp.llama_adapter_lora_p_ctypes * len(self._adapters))(*self._adapters)
            wanted = list(p.adapter_scales) + [1.0] * (len(self._adapters) - len(p.adapter_scales))
            scales = (ctypes.c_float * len(self._adapters))(*wanted)
            if int(llama_cpp.llama_set_adapters_lora(ctx, array, len(self._adapters), scales)) != 0:
                raise ModelLoadFailed("unable to apply the LoRA adapters")
        n_ctx_slot = min(self.context_length, int(llama_cpp.llama_n_ctx_seq(ctx)))
        self.context_length = n_ctx_slot
        self._loop = DecodeLoop(
            self._weights,
            ctx,
            self._compute,
            n_slots=p.num_parallel,
            n_ctx_slot=n_ctx_slot,
            n_batch=n_batch,
            max_queue=p.max_queue,
        )

    # -- facts for the scheduler and /api/ps --

    @property
    def alive(self) -> bool:
        """True until :meth:`close` (an in-process model cannot die on its own without taking the process)."""
        return not self._closed

    @property
    def num_parallel(self) -> int:
        return 0 if self._loop is None else self.params.num_parallel

    @property
    def size_bytes(self) -> int:
        """Weights plus KV cache (estimated), as /api/ps reports ``size``."""
        cells = self.context_length * (self.params.num_parallel if self._loop is not None else 1)
        return loaded_model_bytes(self._weights.size_bytes, self._weights.shape, cells, self._kv_type)

    @property
    def vram_bytes(self) -> int:
        """The part of ``size_bytes`` offloaded to a GPU (0 on CPU-only builds or with num_gpu 0)."""
        if self.params.num_gpu == 0 or not llama_cpp.llama_supports_gpu_offload():
            return 0
        layers = self._weights.n_layer + 1
        share = 1.0 if self.params.num_gpu < 0 else min(1.0, self.params.num_gpu / layers)
        return int(self.size_bytes * share)

    @property
    def active_requests(self) -> int:
        return 0 if self._loop is None else self._loop.active_count

    @property
    def waiting_requests(self) -> int:
        return 0 if self._loop is None else self._loop.waiting_count

    @property
    def embedding_length(self) -> int:
        return self._weights.n_embd

    @property
    def training_context_length(self) -> int:
        return self._weights.n_ctx_train

    async def step_stats(self) -> StepStats:
        """How long the compute thread's steps take, and how long the current one has run (``/metrics``,
        ``/healthz``). Shared by every model on the same compute thread."""
        return self._compute.clock.snapshot()

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        """Prompt text to tokens (control-token text such as ``<|im_start|>`` becomes the control token)."""
        return self._weights.tokenize(text, add_special=add_special, parse_special=True)

    def detokenize(self, tokens: list[int]) -> str:
        return self._weights.detokenize(tokens)

    def wrap_decode(self, wrap: Callable[[DecodeFn], DecodeFn]) -> None:
        """Replace the decode loop's ``llama_decode`` with ``wrap(current)``: the seam at the llama.cpp call
        boundary where fault-injection tests make a step fail or raise. Not for production use."""
        loop = self._loop
        if loop is None:
            raise CapabilityError("this model does not support generate")
        loop.decode_fn = wrap(loop.decode_fn)

    # -- work --

    def generate(self, prompt: str | list[int], sampling: SamplingParams) -> EventStream:
        """Start a generation and return its event stream (``async for event in model.generate(...)``); must be
        called on the consumer's running event loop. Raises as :meth:`start` does."""
        sink, cancel = self._submit(prompt, sampling, lambda: EventSink(asyncio.get_running_loop()))
        return EventStream(sink, cancel)

    def start(self, prompt: str | list[int], sampling: SamplingParams, sink: Sink) -> Callable[[], None]:
        """Start a generation whose events go to ``sink`` (on the compute thread); returns the function that
        cancels it (the slot is freed at the next step).

        Raises at once, before any event: ServerBusy when the waiting queue is full, InvalidOption for bad
        sampling values or an unusable ``format``, BadRequest for an empty prompt or (with ``truncate`` False) a
        prompt longer than the slot's context, CapabilityError on an embedding-only model. A prompt that does
        not fit and may be truncated keeps its first ``num_keep`` tokens and its tail, leaving one cell free;
        ``Done.truncated`` says so.
        """
        return self._submit(prompt, sampling, lambda: sink)[1]

    def _submit(
        self, prompt: str | list[int], sampling: SamplingParams, make_sink: Callable[[], S]
    ) -> tuple[S, Callable[[], None]]:
        """Check, then queue the request with the sink ``make_sink`` gives once every check passed."""
        loop = self._loop  # read once: close() may clear it from another thread
        if loop is None:
            if self._closed:
                raise InternalError("the model was unloaded")
            raise CapabilityError("this model does not support generate")
        sampling.validate()
        tokens = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        if not tokens:
            raise BadRequest("the prompt is empty")
        self.check_tokens(tokens)
        tokens, truncated = self._fit(tokens, sampling)
        chain = SamplerChain(self._weights, sampling, self.context_length)
        try:
            chain.accept_prompt(tokens)
            sink = make_sink()
            request = Request(tokens=tokens, sampling=sampling, chain=chain, sink=sink, truncated=truncated)
            loop.submit(request)
        except BaseException:
            chain.free()
            raise
        return sink, lambda: loop.cancel(request)

    def check_tokens(self, tokens: list[int]) -> None:
        """BadRequest unless every id is in the vocabulary: llama.cpp rejects the whole batch (every request in
        the step) for one bad id, so ids from clients (``context``) are checked before anything is queued."""
        n_vocab = self._weights.n_vocab
        bad = next((t for t in tokens if not 0 <= t < n_vocab), None)
        if bad is not None:
            raise BadRequest(f"invalid token id {bad} in context: the model's vocabulary has {n_vocab} tokens")

    def _fit(self, tokens: list[int], sampling: SamplingParams) -> tuple[list[int], bool]:
        limit = self.context_length - 1
        if len(tokens) <= limit:
            return tokens, False
        if not sampling.truncate:
            raise BadRequest(_INPUT_TOO_LONG)
        keep = max(0, min(sampling.num_keep, limit // 2))
        return tokens[:keep] + tokens[len(tokens) - (limit - keep) :], True

    async def embed(self, texts: list[str], truncate: bool = True) -> tuple[list[list[float]], int]:
        """L2-normalised embeddings of ``texts`` and the total number of input tokens (prompt_eval_count).
        Inputs longer than the context are truncated, or BadRequest when ``truncate`` is False."""
        if not texts:
            return [], 0

        def job() -> tuple[list[list[float]], int]:
            return self._get_embedder().embed(texts, truncate)

        # Between decode steps, on the one thread that runs llama.cpp compute (see compute.py for why).
        return await asyncio.wrap_future(self._compute.call(job))

    def _get_embedder(self) -> Embedder:
        with self._embedder_lock:
            if self._closed:
                raise InternalError("the model was unloaded")
            if self._embedder is None:
                self._embedder = Embedder(self._weights, num_ctx=self.context_length, threads=self._threads)
            return self._embedder

    def close(self) -> None:
        """Stop the decode loop (requests still running end with InternalError) and free every llama.cpp object.
        Idempotent."""
        with self._embedder_lock:
            if self._closed:
                return
            self._closed = True
            embedder, self._embedder = self._embedder, None
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        if embedder is not None:
            # An embedding job may still run on the compute thread: free the context after it, on that thread.
            self._compute.run(embedder.close)
        if self._owns_compute:
            self._compute.close()
        if self._ctx is not None:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        # LoRA adapters belong to the model and are freed with it.
        self._adapters.clear()
        self._weights.free()
