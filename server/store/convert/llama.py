"""The Llama family: ``LlamaForCausalLM`` (Llama 2/3, SmolLM, TinyLlama), ``MistralForCausalLM`` and
``Qwen2ForCausalLM``, from their Hugging Face layout into llama.cpp's ``llama`` / ``qwen2`` architectures.

Hugging Face keeps the rotary halves of each attention head apart (``rotate_half``); llama.cpp's ``llama``
graph wants them interleaved, so Q and K rows are permuted per head (llama.cpp's converter does the same;
``qwen2`` uses the NeoX layout and keeps Hugging Face's order). Tied embeddings (no ``lm_head``) are left tied:
llama.cpp then reuses ``token_embd`` as the output matrix. Rope scaling: ``linear`` becomes llama.cpp's scaling
keys, Llama 3.1's ``llama3`` a computed ``rope_freqs.weight``; other kinds are refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gguf import MODEL_ARCH, GGUFWriter, RopeScalingType, get_tensor_name_map

from server.errors import BadRequest

from .plan import OutputPlan, PlannedTensor, model_name
from .source import ModelDirectory
from .vocab import write_bpe

ARCHITECTURES: dict[str, tuple[str, MODEL_ARCH]] = {
    "LlamaForCausalLM": ("llama", MODEL_ARCH.LLAMA),
    "MistralForCausalLM": ("llama", MODEL_ARCH.LLAMA),
    "Qwen2ForCausalLM": ("qwen2", MODEL_ARCH.QWEN2),
}
_SKIPPED = ("rotary_emb.inv_freq",)


def plan(source: ModelDirectory, architecture: str) -> OutputPlan:
    """The GGUF for a Llama-family directory; BadRequest for settings llama.cpp's graph cannot express."""
    arch, model_arch = ARCHITECTURES[architecture]
    config = source.config
    hp = _hyperparameters(config)
    names = get_tensor_name_map(model_arch, hp["blocks"])
    tensors: list[PlannedTensor] = []
    for name in source.names():
        if name.endswith(_SKIPPED):
            continue
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise BadRequest(f"unexpected tensor {name!r} in a {architecture} model")
        shape = source.tensors[name].shape
        transform = None
        if arch == "llama" and name.endswith("q_proj.weight"):
            transform = _permuter(hp["heads"])
        elif arch == "llama" and name.endswith("k_proj.weight"):
            transform = _permuter(hp["kv_heads"])
        tensors.append(PlannedTensor(target, name, shape, transform))
    scaling = config.get("rope_scaling") or {}
    if arch == "llama" and scaling.get("rope_type", scaling.get("type")) == "llama3":
        factors = llama3_rope_factors(scaling, hp["rope_theta"], hp["head_dim"])
        tensors.append(PlannedTensor("rope_freqs.weight", "", factors.shape, computed=lambda: factors))
    if not any(t.name == "token_embd.weight" for t in tensors):
        raise BadRequest(f"the {architecture} model has no token embeddings (model.embed_tokens.weight)")
    n_vocab = source.tensors[next(t.source for t in tensors if t.name == "token_embd.weight")].shape[0]

    def metadata(writer: GGUFWriter) -> None:
        writer.add_name(model_name(source))
        writer.add_context_length(hp["context"])
        writer.add_embedding_length(hp["hidden"])
        writer.add_block_count(hp["blocks"])
        writer.add_feed_forward_length(hp["ffn"])
        writer.add_head_count(hp["heads"])
        writer.add_head_count_kv(hp["kv_heads"])
        writer.add_rope_dimension_count(hp["head_dim"])
        writer.add_rope_freq_base(hp["rope_theta"])
        writer.add_layer_norm_rms_eps(hp["rms_eps"])
        writer.add_vocab_size(n_vocab)
        if scaling.get("type", scaling.get("rope_type")) == "linear":
            writer.add_rope_scaling_type(RopeScalingType.LINEAR)
            writer.add_rope_scaling_factor(float(scaling["factor"]))
        write_bpe(writer, source, n_vocab)

    sizes = {
        "block_count": hp["blocks"],
        "embedding_length": hp["hidden"],
        "head_count": hp["heads"],
        "head_count_kv": hp["kv_heads"],
        "context_length": hp["context"],
    }
    return OutputPlan(arch=arch, metadata=metadata, tensors=tensors, shape=sizes)


def _hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    try:
        hidden = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        hp: dict[str, Any] = {
            "hidden": hidden,
            "heads": heads,
            "kv_heads": int(config.get("num_key_value_heads") or heads),
            "blocks": int(config["num_hidden_layers"]),
            "ffn": int(config["intermediate_size"]),
            "context": int(config.get("max_position_embeddings") or 2048),
            "rms_eps": float(config.get("rms_norm_eps") or 1e-6),
            "rope_theta": float(config.get("rope_theta") or 10000.0),
            "head_dim": int(config.get("head_dim") or hidden // heads),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"config.json lacks a usable {exc} for this architecture") from exc
    scaling = config.get("rope_scaling") or {}
    kind = scaling.get("type", scaling.get("rope_type"))
    if kind not in (None, "default", "linear", "llama3"):
        raise BadRequest(f"rope scaling {kind!r} is not supported by the converter")
    return hp


def llama3_rope_factors(scaling: dict[str, Any], theta: float, head_dim: int) -> np.ndarray[Any, Any]:
    """Llama 3.1's frequency-dependent rope scaling as the per-dimension divisors llama.cpp reads from
    ``rope_freqs.weight``: high frequencies unscaled, low ones divided by ``factor``, a smooth ramp between."""
    try:
        factor = float(scaling["factor"])
        low = float(scaling.get("low_freq_factor", 1.0))
        high = float(scaling.get("high_freq_factor", 4.0))
        original = float(scaling.get("original_max_position_embeddings", 8192))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"config.json rope_scaling lacks a usable {exc}") from exc
    if not high > low > 0 or factor <= 0:
        raise BadRequest("config.json rope_scaling needs factor > 0 and high_freq_factor > low_freq_factor > 0")
    freqs = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * np.pi / freqs
    smooth = (original / wavelen - low) / (high - low)
    with np.errstate(divide="ignore", invalid="ignore"):  # the ramp is only used where 0 <= smooth <= 1
        ramp = 1.0 / ((1 - smooth) / factor + smooth)
    factors = np.where(wavelen < original / high, 1.0, np.where(wavelen > original / low, factor, ramp))
    return factors.astype(np.float32)


def _permuter(n_head: int) -> Any:
    """Hugging Face's half-split rotary layout to llama.cpp's interleaved one, per head."""

    def permute(weights: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        rows = weights.shape[0]
        return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)

    return permute
