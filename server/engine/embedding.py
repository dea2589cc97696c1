"""Embeddings: a llama context with embeddings on, several inputs per decode, pooled and L2-normalised.

Pooling follows the model (``<arch>.pooling_type`` in the GGUF: mean, cls, last); generative models have none and
get mean pooling. The context is separate from the generation context, so embedding never disturbs the decode
loop's slots; calls are serialised by a lock and run on the caller's (worker) thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import llama_cpp
import numpy as np

from server.errors import BadRequest, InternalError, ModelLoadFailed

from .weights import Weights

log = logging.getLogger(__name__)

_MAX_SEQS = 16
_INPUT_TOO_LONG = "the input length exceeds the context length"


class Embedder:
    """Turns texts into unit vectors of ``weights.n_embd`` floats. ``embed`` blocks: call it from a worker thread."""

    def __init__(self, weights: Weights, *, num_ctx: int, threads: int) -> None:
        self._weights = weights
        n_ctx = min(num_ctx, weights.n_ctx_train) if weights.n_ctx_train > 0 else num_ctx
        self.pooling = self._pooling(weights)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        # Non-causal (BERT-like) models need a whole input in one micro-batch.
        cparams.n_batch = n_ctx
        cparams.n_ubatch = n_ctx
        cparams.n_seq_max = _MAX_SEQS
        cparams.kv_unified = True  # inputs of any length share the cells
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.embeddings = True
        cparams.pooling_type = self.pooling
        cparams.no_perf = True
        ctx = llama_cpp.llama_init_from_model(weights.model, cparams)
        if not ctx:
            raise ModelLoadFailed(f"unable to create an embedding context for {weights.path}")
        self._ctx: Any = ctx
        # llama.cpp may round the context up; inputs are still cut to what was asked for (Ollama's num_ctx).
        self.n_ctx = min(n_ctx, int(llama_cpp.llama_n_ctx(ctx)), int(llama_cpp.llama_n_batch(ctx)))
        self._mem = llama_cpp.llama_get_memory(ctx)
        self._batch: Any = llama_cpp.llama_batch_init(self.n_ctx, 0, 1)
        self._lock = threading.Lock()

    @staticmethod
    def _pooling(weights: Weights) -> int:
        arch = weights.meta("general.architecture") or ""
        declared = weights.meta(f"{arch}.pooling_type")
        if declared is not None and declared.strip().lstrip("-").isdigit():
            value = int(declared)
            if value in (llama_cpp.LLAMA_POOLING_TYPE_CLS, llama_cpp.LLAMA_POOLING_TYPE_LAST):
                return value
        return int(llama_cpp.LLAMA_POOLING_TYPE_MEAN)

    def close(self) -> None:
        with self._lock:
            if self._batch is not None:
                llama_cpp.llama_batch_free(self._batch)
                self._batch = None
            if self._ctx is not None:
                llama_cpp.llama_free(self._ctx)
                self._ctx = None

    def fit(self, text: str, truncate: bool) -> list[int]:
        """Tokens of one input, cut to the context (keeping a trailing EOS/SEP the model adds) when ``truncate``;
        BadRequest when it is too long and ``truncate`` is False."""
        tokens = self._weights.tokenize(text, add_special=True, parse_special=False)
        if not tokens:
            tokens = self._weights.tokenize(" ", add_special=True, parse_special=False) or [0]
        if len(tokens) <= self.n_ctx:
            return tokens
        if not truncate:
            raise BadRequest(_INPUT_TOO_LONG)
        if self._weights.add_eos():
            return [*tokens[: self.n_ctx - 1], tokens[-1]]
        return tokens[: self.n_ctx]

    def embed(self, texts: list[str], truncate: bool = True) -> tuple[list[list[float]], int]:
        """Unit vectors for ``texts`` (same order) and the number of tokens evaluated."""
        inputs = [self.fit(text, truncate) for text in texts]
        vectors: list[list[float]] = []
        with self._lock:
            if self._ctx is None:
                raise InternalError("the model was unloaded")
            group: list[list[int]] = []
            used = 0
            for tokens in inputs:
                if group and (used + len(tokens) > self.n_ctx or len(group) == _MAX_SEQS):
                    vectors.extend(self._run(group))
                    group, used = [], 0
                group.append(tokens)
                used += len(tokens)
            if group:
                vectors.extend(self._run(group))
        return vectors, sum(len(t) for t in inputs)

    def _run(self, group: list[list[int]]) -> list[list[float]]:
        if self._mem:
            llama_cpp.llama_memory_clear(self._mem, True)
        batch = self._batch
        n = 0
        for seq, tokens in enumerate(group):
            for pos, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = pos
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq
                batch.logits[n] = 1
                n += 1
        batch.n_tokens = n
        if self._weights.has_encoder and not self._weights.has_decoder:
            rc = int(llama_cpp.llama_encode(self._ctx, batch))
        else:
            rc = int(llama_cpp.llama_decode(self._ctx, batch))
        if rc != 0:
            raise InternalError(f"embedding failed (llama.cpp returned {rc})")
        out: list[list[float]] = []
        for seq in range(len(group)):
            pointer = llama_cpp.llama_get_embeddings_seq(self._ctx, seq)
            if not pointer:
                raise InternalError("the model returned no embedding")
            vector = np.ctypeslib.as_array(pointer, shape=(self._weights.n_embd,)).astype(np.float64)
            if not np.all(np.isfinite(vector)):
                raise InternalError("embedding contains NaN or Inf values")
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                vector /= norm
            out.append(vector.astype(np.float32).tolist())
        return out
