"""Safetensors -> GGUF for the Llama family, proven on a round trip: smollm2's GGUF weights written out as a
Hugging Face directory (test helper), converted back by Corral, compared with the original's weights tensor by
tensor, key by key, and by greedy generation. Plus the refusals (Ollama's texts) and the input readers."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGUFReader

from server.engine import EngineModel, LoadParams, SamplingParams, Token
from server.errors import BadRequest
from server.store.convert import check_directory, model_files
from server.store.convert.source import METADATA_LIMIT, ModelDirectory
from server.store.convert.vocab import bpe_pre_tokenizer
from server.store.names import ModelName
from server.store.store import Store

from .creation import Statuses, create_from_directory, model_blob

PROMPTS = [
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "The three primary colours are",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
]
# Everything llama.cpp reads to build the model and its tokenizer.
KEYS = [
    "general.architecture",
    "llama.block_count",
    "llama.context_length",
    "llama.embedding_length",
    "llama.feed_forward_length",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.attention.layer_norm_rms_epsilon",
    "llama.rope.freq_base",
    "llama.rope.dimension_count",
    "llama.vocab_size",
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.chat_template",
]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory, smollm2_export) -> dict[str, Path]:
    """The round trip's safetensors converted by ``create``: ``F32`` (``quantize: f32``) and the default F16."""
    store = Store(tmp_path_factory.mktemp("convert-llama") / "models")
    f32, f16 = Statuses(), Statuses()
    create_from_directory(store, "smol-f32", smollm2_export.safetensors, f32, quantize="f32")
    create_from_directory(store, "smol-f16", smollm2_export.safetensors, f16)
    for statuses in (f32, f16):
        assert statuses[0] == "converting model"
        assert statuses[-2:] == ["writing manifest", "success"]
        assert "parsing GGUF" not in statuses
    assert store.config(store.get(ModelName.parse("smol-f32"))).file_type == "F32"  # type: ignore[arg-type]
    assert store.config(store.get(ModelName.parse("smol-f16"))).file_type == "F16"  # type: ignore[arg-type]
    return {"F32": model_blob(store, "smol-f32"), "F16": model_blob(store, "smol-f16")}


def test_f32_conversion_gives_back_the_original_weights_tensor_by_tensor(converted, smollm2_export) -> None:
    ours = {t.name: t for t in GGUFReader(converted["F32"]).tensors}
    reference = {t.name: t for t in GGUFReader(smollm2_export.reference).tensors}
    assert set(ours) == set(reference)
    for name, tensor in reference.items():
        assert ours[name].tensor_type == tensor.tensor_type, name
        assert list(ours[name].shape) == list(tensor.shape), name
        assert np.array_equal(ours[name].data, tensor.data), name


def test_conversion_writes_the_metadata_llama_cpp_reads(converted, smollm2_export) -> None:
    reference = GGUFReader(smollm2_export.reference)
    for path in converted.values():
        ours = GGUFReader(path)
        for key in KEYS:
            assert key in ours.fields, key
            assert ours.fields[key].contents() == reference.fields[key].contents(), key


def greedy_outputs(path: Path, n: int = 24) -> list[str]:
    """Greedy completions of every prompt, decoded together in one batch (one slot each: a sequence's numbers
    never depend on its batch-mates, and F32 weights are read once per step instead of once per prompt)."""

    async def one(model: EngineModel, prompt: str) -> str:
        parts = []
        async for event in model.generate(prompt, SamplingParams(temperature=0, num_predict=n)):
            if isinstance(event, Token):
                parts.append(event.text)
        return "".join(parts)

    async def run() -> list[str]:
        model = EngineModel.load(LoadParams(model_path=str(path), num_ctx=128, num_parallel=len(PROMPTS)))
        try:
            return list(await asyncio.gather(*(one(model, prompt) for prompt in PROMPTS)))
        finally:
            model.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def reference_outputs(smollm2_export) -> list[str]:
    """Greedy output of the original weights (the Q4_1 file's tensors in F32)."""
    return greedy_outputs(smollm2_export.reference)


@pytest.mark.slow
def test_round_trip_generates_exactly_what_the_original_weights_generate(converted, reference_outputs) -> None:
    """Greedy output of the original weights (the reference GGUF: the Q4_1 file's tensors in F32) and of Corral's
    F32 and F16 conversions of the exported safetensors are identical for every prompt. (The Q4_1 file itself
    computes with 8-bit activations, so its own greedy text is not the yardstick for float weights.)"""
    expected = reference_outputs
    assert all(text.strip() for text in expected)
    assert "Paris" in expected[0]
    assert greedy_outputs(converted["F32"]) == expected
    assert greedy_outputs(converted["F16"]) == expected


@pytest.mark.slow
def test_qwen2_layout_converts_to_the_same_network(tmp_path: Path, smollm2_path: Path, reference_outputs) -> None:
    """smollm2 exported as ``Qwen2ForCausalLM`` (zero Q/K/V biases, Hugging Face's rotary order, which llama.cpp's
    ``qwen2`` graph uses as is) converts to a ``qwen2`` GGUF that generates what the original weights do."""
    from tests.server.store.exporting import write_llama_safetensors

    directory = write_llama_safetensors(smollm2_path, tmp_path / "qwen2-layout", as_qwen2=True)
    store = Store(tmp_path / "models")
    create_from_directory(store, "smol-qwen2", directory, Statuses())
    reader = GGUFReader(model_blob(store, "smol-qwen2"))
    assert reader.fields["general.architecture"].contents() == "qwen2"
    assert "blk.0.attn_q.bias" in {t.name for t in reader.tensors}
    assert greedy_outputs(model_blob(store, "smol-qwen2")) == reference_outputs


@pytest.mark.slow
def test_llama3_rope_scaling_becomes_rope_freqs(tmp_path: Path, smollm2_export) -> None:
    """A ``rope_scaling`` of type ``llama3`` is written as the per-dimension divisors llama.cpp reads: 1 for the
    fastest-turning dimensions, ``factor`` for the slowest, and the model still loads and answers."""
    directory = tmp_path / "llama3-scaled"
    directory.mkdir()
    for path in smollm2_export.safetensors.iterdir():
        (directory / path.name).symlink_to(path)
    config = json.loads((smollm2_export.safetensors / "config.json").read_text())
    config["rope_scaling"] = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    (directory / "config.json").unlink()
    (directory / "config.json").write_text(json.dumps(config))
    store = Store(tmp_path / "models")
    create_from_directory(store, "smol-llama3", directory, Statuses())
    tensors = {t.name: t for t in GGUFReader(model_blob(store, "smol-llama3")).tensors}
    factors = np.asarray(tensors["rope_freqs.weight"].data)
    assert factors.shape == (32,)  # head_dim 64 / 2
    assert factors[0] == 1.0 and factors[-1] == 8.0
    assert np.all(np.diff(factors) >= 0) and np.all((factors >= 1.0) & (factors <= 8.0))
    assert greedy_outputs(model_blob(store, "smol-llama3"), n=8)[0].strip()


def write_config(directory: Path, config: dict[str, Any] | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    if config is not None:
        (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"architectures": ["GPT2LMHeadModel"]}, 'unsupported architecture "GPT2LMHeadModel"'),
        ({"architectures": ["Gemma3ForCausalLM"]}, 'unsupported architecture "Gemma3ForCausalLM"'),
        ({"model_type": "llama"}, "unknown architecture"),
        ({"architectures": []}, "unknown architecture"),
        (None, "config.json is missing: a safetensors model needs its config.json"),
    ],
)
def test_unconvertible_models_are_refused_before_anything_is_written(tmp_path: Path, config, error) -> None:
    directory = write_config(tmp_path / "src", config)
    with pytest.raises(BadRequest) as caught:
        check_directory(directory)
    assert str(caught.value) == error
    store = Store(tmp_path / "models")
    statuses = Statuses()
    with pytest.raises(BadRequest) as again:
        create_from_directory(store, "x", directory, statuses)
    assert str(again.value) == error
    assert statuses == []
    assert store.get(ModelName.parse("x")) is None
    assert [p.name for p in store.blobs.root.iterdir() if not p.name.startswith("sha256-")] == []


@pytest.mark.parametrize("name", ["tokenizer.json", "config.json", "vocab.txt"])
def test_an_oversized_metadata_file_is_refused_before_it_is_read(tmp_path: Path, name: str) -> None:
    directory = write_config(tmp_path / "src", {"architectures": ["LlamaForCausalLM"]})
    with (directory / name).open("ab") as handle:  # sparse: no disk is spent on it
        handle.truncate(METADATA_LIMIT + 1)
    with pytest.raises(BadRequest) as caught:
        check_directory(directory)
    assert str(caught.value) == (
        f"{name} is {METADATA_LIMIT + 1} bytes: tokenizer and config files over 64 MiB are refused"
    )
    store = Store(tmp_path / "models")
    with pytest.raises(BadRequest, match=f"^{name} is"):
        create_from_directory(store, "x", directory, Statuses())
    assert store.get(ModelName.parse("x")) is None


def test_a_directory_without_safetensors_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BadRequest, match=r"holds no \*\.safetensors files"):
        model_files(tmp_path)


@pytest.mark.parametrize(
    ("section", "name"),
    [
        ({"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}, "gpt-2"),
        (
            {
                "type": "Sequence",
                "pretokenizers": [{"type": "Digits", "individual_digits": True}, {"type": "ByteLevel"}],
            },
            "smollm",
        ),
        (
            {
                "type": "Sequence",
                "pretokenizers": [
                    {
                        "type": "Split",
                        "pattern": {
                            "Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?"
                            "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
                        },
                    },
                    {"type": "ByteLevel", "use_regex": False},
                ],
            },
            "llama-bpe",
        ),
        (
            {
                "type": "Sequence",
                "pretokenizers": [
                    {
                        "type": "Split",
                        "pattern": {
                            "Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?"
                            "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
                        },
                    },
                    {"type": "ByteLevel", "use_regex": False},
                ],
            },
            "qwen2",
        ),
        ({"type": "Whitespace"}, "default"),
        (None, "default"),
    ],
)
def test_bpe_pre_tokenizers_are_named_as_llama_cpp_names_them(section, name: str) -> None:
    assert bpe_pre_tokenizer(section) == name


def test_bf16_tensors_are_widened_to_float32_exactly(tmp_path: Path) -> None:
    values = np.array([[1.0, -2.5, 3.140625], [0.0, 65280.0, -0.0078125]], dtype=np.float32)
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, len(raw)]}}).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + raw)
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    directory = ModelDirectory(tmp_path)
    assert directory.tensors["w"].dtype == "BF16"
    read = directory.read("w")
    assert read.dtype == np.float32
    assert np.array_equal(read, values)
