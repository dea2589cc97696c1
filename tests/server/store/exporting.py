"""Test helpers that write models out of a GGUF file: the same weights as a plain F32/F16 GGUF, or as a Hugging
Face safetensors directory (config, tokenizer, weights) that Corral's converter turns back into GGUF.

The safetensors export undoes what llama.cpp's converter does to Llama weights: Q and K rows go back from the
interleaved rotary layout to Hugging Face's half-split one, and the byte-level BPE vocabulary and merges
become a ``tokenizer.json`` with SmolLM2's pre-tokenizer. Everything is numpy + ``gguf`` + ``safetensors``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType, TokenType, dequantize
from safetensors.numpy import save_file

# GGUF tensor names of a Llama block -> Hugging Face names.
_LLAMA_BLOCK = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_LLAMA_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def field_value(reader: GGUFReader, key: str) -> Any:
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def write_float_gguf(source: Path, target: Path, *, f16: bool = False) -> Path:
    """``source``'s metadata and weights, dequantized: matrices F16 (``f16``) or F32, vectors F32."""
    reader = GGUFReader(source)
    writer = GGUFWriter(target, str(field_value(reader, "general.architecture")))
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue
        if field.types[0] == GGUFValueType.ARRAY:
            writer.add_array(key, field.contents())
        else:
            writer.add_key_value(key, field.contents(), field.types[0])
    writer.add_file_type(LlamaFileType.MOSTLY_F16 if f16 else LlamaFileType.ALL_F32)
    for tensor in reader.tensors:
        data = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, data.astype(np.float16) if f16 and data.ndim > 1 else data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


def write_llama_safetensors(source: Path, directory: Path, *, as_qwen2: bool = False) -> Path:
    """A Llama GGUF (with a byte-level BPE tokenizer) as a Hugging Face directory: ``model.safetensors`` in F32,
    ``config.json``, ``tokenizer.json`` and ``tokenizer_config.json`` (chat template, special tokens).

    ``as_qwen2`` labels the same network ``Qwen2ForCausalLM`` and adds the Q/K/V biases Qwen2 has, all zero:
    the same function, so a correct Qwen2 conversion generates exactly what the Llama one does."""
    reader = GGUFReader(source)
    arch = str(field_value(reader, "general.architecture"))
    assert arch == "llama", arch
    heads = int(field_value(reader, "llama.attention.head_count"))
    kv_heads = int(field_value(reader, "llama.attention.head_count_kv"))
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for tensor in reader.tensors:
        data = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        base, _, kind = tensor.name.rpartition(".")
        if base.startswith("blk."):
            _, index, part = base.split(".")
            name = f"model.layers.{index}.{_LLAMA_BLOCK[part]}.{kind}"
            if part == "attn_q":
                data = _unpermute(data, heads)
            elif part == "attn_k":
                data = _unpermute(data, kv_heads)
        else:
            name = f"{_LLAMA_TOP[base]}.{kind}"
        tensors[name] = np.ascontiguousarray(data)
    if as_qwen2:
        for name in [n for n in tensors if n.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight"))]:
            tensors[name.removesuffix("weight") + "bias"] = np.zeros(tensors[name].shape[0], dtype=np.float32)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    vocab_size = tensors["model.embed_tokens.weight"].shape[0]
    config = {
        "architectures": ["Qwen2ForCausalLM" if as_qwen2 else "LlamaForCausalLM"],
        "model_type": "qwen2" if as_qwen2 else "llama",
        "_name_or_path": "exported/smollm2-roundtrip",
        "hidden_size": int(field_value(reader, "llama.embedding_length")),
        "intermediate_size": int(field_value(reader, "llama.feed_forward_length")),
        "num_hidden_layers": int(field_value(reader, "llama.block_count")),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": int(field_value(reader, "llama.context_length")),
        "rms_norm_eps": float(field_value(reader, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(field_value(reader, "llama.rope.freq_base")),
        "vocab_size": vocab_size,
        "tie_word_embeddings": "lm_head.weight" not in tensors,
        "torch_dtype": "float32",
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    _write_bpe_tokenizer(reader, directory)
    return directory


def _unpermute(weights: np.ndarray[Any, Any], n_head: int) -> np.ndarray[Any, Any]:
    """llama.cpp's interleaved rotary rows back to Hugging Face's half-split order (inverse of the converter)."""
    rows = weights.shape[0]
    return weights.reshape(n_head, rows // n_head // 2, 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _write_bpe_tokenizer(reader: GGUFReader, directory: Path) -> None:
    tokens = [str(t) for t in field_value(reader, "tokenizer.ggml.tokens")]
    types = [int(t) for t in field_value(reader, "tokenizer.ggml.token_type")]
    merges = [str(m) for m in field_value(reader, "tokenizer.ggml.merges")]
    added = [
        {
            "id": i,
            "content": t,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, (t, kind) in enumerate(zip(tokens, types, strict=True))
        if kind == TokenType.CONTROL
    ]
    tokenizer = {
        "version": "1.0",
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": {t: i for i, t in enumerate(tokens)},
            "merges": [m.split(" ", 1) for m in merges],
        },
    }
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))

    def token(key: str) -> str | None:
        index = field_value(reader, f"tokenizer.ggml.{key}_token_id")
        return None if index is None else tokens[int(index)]

    config = {
        "bos_token": token("bos"),
        "eos_token": token("eos"),
        "unk_token": token("unknown"),
        "pad_token": token("padding"),
        "add_bos_token": bool(field_value(reader, "tokenizer.ggml.add_bos_token")),
        "add_prefix_space": False,
        "chat_template": field_value(reader, "tokenizer.chat_template"),
        "model_max_length": 8192,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
