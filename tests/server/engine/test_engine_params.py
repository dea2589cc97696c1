"""Parameter validation, seeds, grammars and the tail-free sampler on synthetic candidates (no model needed)."""

from __future__ import annotations

import ctypes
import json
import math

import llama_cpp
import pytest

from server.engine import LoadParams, SamplingParams
from server.engine.sampling import grammar_for, resolve_seed, tail_free
from server.errors import InvalidOption


@pytest.mark.parametrize(
    "options",
    [
        {"mirostat": 3},
        {"repeat_last_n": -2},
        {"repeat_penalty": 0.0},
        {"num_predict": -3},
        {"top_logprobs": 21},
        {"temperature": math.nan},
        {"format": "xml"},
    ],
)
def test_bad_sampling_values_are_invalid_options(options: dict[str, object]) -> None:
    with pytest.raises(InvalidOption):
        SamplingParams(**options).validate()  # type: ignore[arg-type]


def test_defaults_follow_the_parameter_table() -> None:
    p = SamplingParams()
    assert (p.temperature, p.top_k, p.top_p, p.tfs_z, p.typical_p) == (0.8, 40, 0.9, 1.0, 1.0)
    assert (p.repeat_penalty, p.repeat_last_n, p.seed, p.num_predict) == (1.1, 64, 0, -1)
    assert (p.mirostat, p.mirostat_tau, p.mirostat_eta, p.penalize_newline) == (0, 5.0, 0.1, True)
    p.validate()


@pytest.mark.parametrize("params", [{"num_ctx": 2}, {"num_parallel": 0}, {"kv_cache_type": "q5_1"}])
def test_bad_load_values_are_invalid_options(params: dict[str, object]) -> None:
    with pytest.raises(InvalidOption):
        LoadParams(model_path="x", **params).validate()  # type: ignore[arg-type]


def test_seeds() -> None:
    assert resolve_seed(42) == 42
    assert resolve_seed(2**32 + 7) == 7
    assert resolve_seed(0xFFFFFFFF) != 0xFFFFFFFF  # that value means "random" to llama.cpp
    randoms = {resolve_seed(0) for _ in range(8)} | {resolve_seed(-1) for _ in range(8)}
    assert len(randoms) > 1


def test_grammars() -> None:
    assert grammar_for(None) is None
    assert grammar_for("") is None
    assert "root" in (grammar_for("json") or "")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    assert "root" in (grammar_for(schema) or "")
    with pytest.raises(InvalidOption):
        grammar_for({"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}})


def candidates(logits: list[float]) -> llama_cpp.llama_token_data_array:
    data = (llama_cpp.llama_token_data * len(logits))()
    for i, logit in enumerate(logits):
        data[i].id = i
        data[i].logit = logit
    array = llama_cpp.llama_token_data_array()
    array.data = ctypes.cast(data, ctypes.POINTER(llama_cpp.llama_token_data))
    array.size = len(logits)
    array.selected = -1
    array.sorted = False
    array._keep = data  # type: ignore[attr-defined]
    return array


def kept_ids(array: llama_cpp.llama_token_data_array) -> list[int]:
    return [int(array.data[i].id) for i in range(int(array.size))]


def test_tail_free_cuts_the_flat_tail_and_sorts() -> None:
    # probabilities fall off a cliff after the third token: the tail is flat
    logits = [0.0, 5.0, -10.0, 4.9, -10.0, 4.8, -10.0, -10.0]
    loose = candidates(logits)
    tail_free(loose, 0.999)
    assert kept_ids(loose) == [1, 3, 5]
    assert loose.sorted
    # a smaller z cuts where the curvature of the sorted probabilities has mostly been seen
    tight = candidates(logits)
    tail_free(tight, 0.95)
    assert kept_ids(tight) == [1, 3]


def test_tail_free_one_is_off_and_tiny_z_keeps_one() -> None:
    logits = [float(x) for x in json.loads("[3, 2, 1, 0, -1]")]
    off = candidates(logits)
    tail_free(off, 1.0)
    assert int(off.size) == 5
    tight = candidates(logits)
    tail_free(tight, 1e-9)
    assert kept_ids(tight) == [0]
