"""How much memory a loaded model takes: weights plus its KV cache. Pure arithmetic, no llama.cpp.

One estimator for the whole project: the engine reports it as ``size`` in ``/api/ps`` and the Pulumi program
(``infra/sizing.py``) sizes pod memory and checks GPU memory with it, from the same GGUF facts (layers, embedding
width, attention heads) that llama.cpp reads at load time.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bytes per KV-cache element for each OLLAMA_KV_CACHE_TYPE (q8_0 and q4_0 are 32-element blocks with a scale).
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


@dataclass(frozen=True)
class ModelShape:
    """The GGUF facts the KV cache size depends on."""

    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int


def kv_cache_bytes(shape: ModelShape, n_cells: int, kv_cache_type: str) -> int:
    """Estimated size of a KV cache of ``n_cells`` cells (all slots together) of type ``kv_cache_type``.

    Raises KeyError for a cache type not in ``KV_BYTES_PER_ELEMENT``.
    """
    n_head = max(1, shape.n_head)
    n_head_kv = max(1, shape.n_head_kv)
    width = shape.n_embd // n_head * n_head_kv
    return int(2 * shape.n_layer * n_cells * width * KV_BYTES_PER_ELEMENT[kv_cache_type])


def loaded_model_bytes(weights_bytes: int, shape: ModelShape, n_cells: int, kv_cache_type: str) -> int:
    """Weights plus KV cache of one loaded model: ``/api/ps``'s ``size``."""
    return weights_bytes + kv_cache_bytes(shape, n_cells, kv_cache_type)
