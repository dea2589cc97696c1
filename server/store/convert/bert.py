"""BERT encoders (``BertModel``, e.g. sentence-transformers' all-MiniLM-L6-v2) into llama.cpp's ``bert``
architecture, as an embedding model: non-causal attention and the pooling sentence-transformers uses
(``1_Pooling/config.json``: mean by default, CLS when it says so). The pooler head and the position-id buffer
are not part of llama.cpp's graph and are left out.
"""

from __future__ import annotations

from gguf import MODEL_ARCH, GGUFWriter, PoolingType, get_tensor_name_map

from server.errors import BadRequest

from .plan import OutputPlan, PlannedTensor, model_name
from .source import ModelDirectory
from .vocab import write_wordpiece

ARCHITECTURES = ("BertModel",)
_SKIPPED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def plan(source: ModelDirectory, architecture: str) -> OutputPlan:
    config = source.config
    try:
        hidden = int(config["hidden_size"])
        blocks = int(config["num_hidden_layers"])
        heads = int(config["num_attention_heads"])
        ffn = int(config["intermediate_size"])
        context = int(config.get("max_position_embeddings") or 512)
        eps = float(config.get("layer_norm_eps") or 1e-12)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"config.json lacks a usable {exc} for a BERT model") from exc
    names = get_tensor_name_map(MODEL_ARCH.BERT, blocks)
    tensors: list[PlannedTensor] = []
    for name in source.names():
        bare = name.removeprefix("bert.")
        if bare in _SKIPPED or bare.startswith(("pooler.", "cls.")):
            continue
        target = names.get_name(bare, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise BadRequest(f"unexpected tensor {name!r} in a {architecture} model")
        tensors.append(PlannedTensor(target, name, source.tensors[name].shape))
    embeddings = next((t for t in tensors if t.name == "token_embd.weight"), None)
    if embeddings is None:
        raise BadRequest(f"the {architecture} model has no word embeddings")
    n_vocab = embeddings.shape[0]
    pooling = _pooling(source)

    def metadata(writer: GGUFWriter) -> None:
        writer.add_name(model_name(source))
        writer.add_context_length(context)
        writer.add_embedding_length(hidden)
        writer.add_feed_forward_length(ffn)
        writer.add_block_count(blocks)
        writer.add_head_count(heads)
        writer.add_layer_norm_eps(eps)
        writer.add_causal_attention(False)
        writer.add_pooling_type(pooling)
        writer.add_token_type_count(int(config.get("type_vocab_size") or 2))
        write_wordpiece(writer, source, n_vocab)

    shape = {
        "block_count": blocks,
        "embedding_length": hidden,
        "head_count": heads,
        "head_count_kv": heads,
        "context_length": context,
    }
    return OutputPlan(arch="bert", metadata=metadata, tensors=tensors, shape=shape)


def _pooling(source: ModelDirectory) -> PoolingType:
    pooling = source.json("1_Pooling/config.json")
    if pooling.get("pooling_mode_cls_token"):
        return PoolingType.CLS
    return PoolingType.MEAN
