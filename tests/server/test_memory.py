"""The memory estimator shared by /api/ps and the Pulumi program's sizing."""

from __future__ import annotations

import pytest

from server.memory import ModelShape, kv_cache_bytes, loaded_model_bytes

# Llama-3.1-8B: 32 layers, 4096 wide, 32 query heads, 8 KV heads (GQA) -> 128 KiB per cell at f16.
LLAMA_8B = ModelShape(n_layer=32, n_embd=4096, n_head=32, n_head_kv=8)


@pytest.mark.parametrize(
    ("kv_type", "expected"),
    [("f16", 4 * 2**30), ("q8_0", int(4 * 2**30 * 34 / 64)), ("q4_0", int(4 * 2**30 * 18 / 64))],
)
def test_kv_cache_of_32k_cells(kv_type: str, expected: int) -> None:
    assert kv_cache_bytes(LLAMA_8B, 32768, kv_type) == expected


def test_loaded_model_is_weights_plus_cache() -> None:
    assert loaded_model_bytes(1000, LLAMA_8B, 1, "f16") == 1000 + 128 * 1024


def test_unknown_cache_type_is_refused() -> None:
    with pytest.raises(KeyError):
        kv_cache_bytes(LLAMA_8B, 1, "f32")
