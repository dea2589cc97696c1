"""Safetensors -> GGUF conversion (``FROM ./model-dir``, ``/api/create`` with safetensors ``files``).

Reads a Hugging Face model directory with ``safetensors`` and numpy only (no torch, nothing downloaded) and
writes a GGUF file llama.cpp loads: the architecture's hyperparameters, the tokenizer (tokens, merges, special
tokens, chat template) and the weights, matrices in F32, F16 or BF16.

Supported ``architectures[0]`` of ``config.json``: the Llama family (``LlamaForCausalLM``,
``MistralForCausalLM``, ``Qwen2ForCausalLM``) and BERT encoders (``BertModel``, converted as embedding models).
Anything else is refused with Ollama's text, ``unsupported architecture "<name>"``.

Usage::

    architecture = check_directory(root)          # BadRequest before any work for unsupported input
    convert_directory(root, target, "F16", progress)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from server.errors import BadRequest

from . import bert, llama
from .plan import FILE_TYPES, OutputPlan, write_plan
from .source import ModelDirectory

__all__ = [
    "FILE_TYPES",
    "DirectoryFacts",
    "check_directory",
    "convert_directory",
    "describe_directory",
    "is_safetensors_model",
    "model_files",
]

SUPPORTED = (*llama.ARCHITECTURES, *bert.ARCHITECTURES)
# What a client uploads from a model directory (``FROM ./dir``): weights, configuration, tokenizer, pooling.
_MODEL_FILES = (
    "*.safetensors",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.json",
    "chat_template.jinja",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "modules.json",
    "1_Pooling/config.json",
)


def model_files(directory: Path) -> list[Path]:
    """The files of a model directory that conversion reads, sorted; BadRequest when there are no
    ``*.safetensors`` among them (a directory must hold a safetensors model)."""
    found = {path for pattern in _MODEL_FILES for path in directory.glob(pattern) if path.is_file()}
    if not any(path.suffix == ".safetensors" for path in found):
        raise BadRequest(f"{directory} holds no *.safetensors files: give a GGUF file or a safetensors model directory")
    return sorted(found)


def is_safetensors_model(names: list[str]) -> bool:
    """True when a set of create ``files`` is a safetensors model (at least one ``*.safetensors``)."""
    return any(name.endswith(".safetensors") for name in names)


def check_directory(root: Path) -> str:
    """The directory's architecture when it can be converted; BadRequest (Ollama's texts for a missing or
    unsupported architecture) otherwise."""
    config = ModelDirectory.config_of(root)
    architectures = config.get("architectures")
    if not isinstance(architectures, list) or not architectures:
        raise BadRequest("unknown architecture")
    architecture = str(architectures[0])
    if architecture not in SUPPORTED:
        raise BadRequest(f'unsupported architecture "{architecture}"')
    return architecture


@dataclass(frozen=True)
class DirectoryFacts:
    """A convertible directory as sizing sees it, without converting: the GGUF architecture, its shape
    (``block_count``, ``embedding_length``, ``head_count``, ``head_count_kv``, ``context_length``), the bytes
    of the files a create uploads (``source_bytes``) and of the F16 GGUF it becomes (``gguf_bytes``,
    estimated from the tensor shapes; the header, mostly the vocabulary, is not counted)."""

    architecture: str
    shape: dict[str, int]
    source_bytes: int
    gguf_bytes: int


def describe_directory(root: Path) -> DirectoryFacts:
    """Facts of the model in ``root`` (BadRequest as ``check_directory``); reads only headers and JSON."""
    architecture = check_directory(root)
    source = ModelDirectory(root)
    planner = bert.plan if architecture in bert.ARCHITECTURES else llama.plan
    built = planner(source, architecture)
    return DirectoryFacts(
        architecture=built.arch,
        shape=dict(built.shape),
        source_bytes=sum(path.stat().st_size for path in model_files(root)),
        gguf_bytes=built.tensor_bytes("F16"),
    )


def convert_directory(root: Path, target: Path, outtype: str, progress: Callable[[int, int], None]) -> None:
    """Convert the model in ``root`` into the GGUF file ``target`` with matrices in ``outtype`` (``F32``,
    ``F16`` or ``BF16``); ``progress(done, total)`` counts output bytes. Raises BadRequest for input that
    cannot be converted (``target`` is then incomplete: the caller removes it)."""
    architecture = check_directory(root)
    if outtype not in FILE_TYPES:
        raise BadRequest(f"cannot convert to {outtype}: choose one of {', '.join(FILE_TYPES)}")
    source = ModelDirectory(root)
    planner = bert.plan if architecture in bert.ARCHITECTURES else llama.plan
    with _quiet_gguf():
        built: OutputPlan = planner(source, architecture)
        write_plan(built, source, target, outtype, progress)


@contextlib.contextmanager
def _quiet_gguf() -> Iterator[None]:
    """The ``gguf`` package logs every file it writes (and special tokens its writer has no key for) at INFO and
    WARNING; during a conversion that is noise in the create progress, so only its errors pass."""
    logger = logging.getLogger("gguf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
