"""Tokenizers into GGUF metadata as llama.cpp reads it.

* BPE (``tokenizer.json`` with a byte-level BPE model: Llama 3, SmolLM2, Qwen2, GPT-2): ``tokenizer.ggml.model``
  ``gpt2``, the tokens in id order, the merges, and ``tokenizer.ggml.pre`` naming llama.cpp's pre-tokenizer
  (recognised from the ``pre_tokenizer`` section: the regex llama.cpp must split with).
* WordPiece (BERT): ``tokenizer.ggml.model`` ``bert``, with llama.cpp's spelling of the pieces: a word-initial
  piece gets ``▁`` in front, a continuation (``##x``) loses its ``##``, special tokens (``[CLS]``) stay.

Token types follow llama.cpp's converter: added tokens marked special are CONTROL, other added tokens
USER_DEFINED, the rest NORMAL; ids the model has rows for but the tokenizer does not name are padding
(``[PAD<id>]``, UNUSED). Special token ids, ``add_bos``/``add_eos`` and the chat template come from
``tokenizer_config.json`` / ``tokenizer.json`` through ``gguf.SpecialVocab``.
"""

from __future__ import annotations

import logging
from typing import Any

from gguf import GGUFWriter, SpecialVocab, TokenType

from server.errors import BadRequest

from .source import ModelDirectory

log = logging.getLogger(__name__)

# Pre-tokenizer regexes of the tokenizer.json files llama.cpp knows, by the name llama.cpp gives them.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def write_bpe(writer: GGUFWriter, source: ModelDirectory, n_vocab: int) -> None:
    """BPE vocabulary, merges, pre-tokenizer and special tokens. BadRequest for a tokenizer that is not a
    byte-level BPE in ``tokenizer.json`` (a SentencePiece ``tokenizer.model`` is not supported)."""
    tokenizer = source.json("tokenizer.json")
    model = tokenizer.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or not isinstance(model.get("vocab"), dict):
        raise BadRequest(
            "unsupported tokenizer: only byte-level BPE tokenizers in tokenizer.json can be converted "
            "(SentencePiece models are not supported)"
        )
    tokens, types = _tokens(model["vocab"], tokenizer.get("added_tokens") or [], n_vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(bpe_pre_tokenizer(tokenizer.get("pre_tokenizer")))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = SpecialVocab(source.root, load_merges=True, n_vocab=len(tokens))
    if not special.merges:
        raise BadRequest("tokenizer.json has no merges: the BPE tokenizer cannot be converted")
    special.add_to_gguf(writer, quiet=True)


def write_wordpiece(writer: GGUFWriter, source: ModelDirectory, n_vocab: int) -> None:
    """BERT's WordPiece vocabulary (``tokenizer.json``, or ``vocab.txt``) and its special tokens."""
    tokenizer = source.json("tokenizer.json")
    model = tokenizer.get("model") or {}
    if model.get("type") == "WordPiece" and isinstance(model.get("vocab"), dict):
        vocab: dict[str, int] = model["vocab"]
        prefix = str(model.get("continuing_subword_prefix") or "##")
    elif source.has("vocab.txt"):
        lines = (source.root / "vocab.txt").read_text(encoding="utf-8").splitlines()
        vocab = {line: index for index, line in enumerate(lines)}
        prefix = "##"
    else:
        raise BadRequest("unsupported tokenizer: a BERT model needs a WordPiece tokenizer.json or vocab.txt")
    raw, types = _tokens(vocab, tokenizer.get("added_tokens") or [], n_vocab)
    tokens = [_wordpiece(token, prefix, kind) for token, kind in zip(raw, types, strict=True)]
    writer.add_tokenizer_model("bert")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = SpecialVocab(source.root, load_merges=False, n_vocab=len(tokens))
    special.add_to_gguf(writer, quiet=True)


def _wordpiece(token: str, prefix: str, kind: TokenType) -> str:
    if kind in (TokenType.CONTROL, TokenType.UNUSED) or (token.startswith("[") and token.endswith("]")):
        return token
    if token.startswith(prefix):
        return token[len(prefix) :]
    return "\u2581" + token


def _tokens(vocab: dict[str, int], added: list[dict[str, Any]], n_vocab: int) -> tuple[list[str], list[TokenType]]:
    """Tokens in id order with their types; ``n_vocab`` (the model's embedding rows) pads the list."""
    by_id: dict[int, str] = {int(index): text for text, index in vocab.items()}
    kinds: dict[int, TokenType] = {}
    for item in added:
        index, text = int(item["id"]), str(item["content"])
        by_id[index] = text
        kinds[index] = TokenType.CONTROL if item.get("special") else TokenType.USER_DEFINED
    size = max(n_vocab, max(by_id, default=-1) + 1)
    tokens: list[str] = []
    types: list[TokenType] = []
    for index in range(size):
        named = by_id.get(index)
        if named is None:
            tokens.append(f"[PAD{index}]")
            types.append(TokenType.UNUSED)
        else:
            tokens.append(named)
            types.append(kinds.get(index, TokenType.NORMAL))
    return tokens, types


def bpe_pre_tokenizer(section: Any) -> str:
    """llama.cpp's name for a ``tokenizer.json`` ``pre_tokenizer`` section; ``default`` (with a warning in the
    log) for one it does not know."""
    steps = section.get("pretokenizers", [section]) if isinstance(section, dict) else []
    kinds = [step.get("type") for step in steps if isinstance(step, dict)]
    splits = [str((step.get("pattern") or {}).get("Regex", "")) for step in steps if step.get("type") == "Split"]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
        return "smollm"
    if splits == [_LLAMA3_SPLIT]:
        return "llama-bpe"
    if splits == [_QWEN2_SPLIT]:
        return "qwen2"
    log.warning("unknown BPE pre-tokenizer %s; llama.cpp will use its default one", kinds)
    return "default"
