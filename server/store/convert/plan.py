"""What an architecture hands the writer: GGUF metadata and a list of tensors to write, each with its source.

An architecture module (``llama``, ``bert``) turns a :class:`~.source.ModelDirectory` into an :class:`OutputPlan`
without reading any tensor data; :func:`write_plan` then writes the GGUF in one pass, reading, transforming and
writing one tensor at a time (the shapes and types are known up front, so the header is written first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType
from gguf.quants import quantize as gguf_quantize

from .source import ModelDirectory

Transform = Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]
Progress = Callable[[int, int], None]

# Output types of a conversion and their llama.cpp file types.
FILE_TYPES: dict[str, LlamaFileType] = {
    "F32": LlamaFileType.ALL_F32,
    "F16": LlamaFileType.MOSTLY_F16,
    "BF16": LlamaFileType.MOSTLY_BF16,
}


@dataclass(frozen=True)
class PlannedTensor:
    """``source`` (a safetensors name) written as ``name`` after ``transform`` (which keeps the shape); or, with
    ``computed``, a tensor the converter derives from the configuration (``source`` is then empty)."""

    name: str
    source: str
    shape: tuple[int, ...]
    transform: Transform | None = None
    computed: Callable[[], np.ndarray[Any, Any]] | None = None


@dataclass
class OutputPlan:
    """A GGUF to write: the architecture, a function that adds its metadata, and its tensors in order."""

    arch: str
    metadata: Callable[[GGUFWriter], None]
    tensors: list[PlannedTensor] = field(default_factory=list)
    # What sizing needs without converting: block_count, embedding_length, head_count, head_count_kv,
    # context_length (the values written as ``<arch>.*``).
    shape: dict[str, int] = field(default_factory=dict)

    def tensor_bytes(self, outtype: str) -> int:
        """Bytes of tensor data the GGUF will hold with matrices in ``outtype`` (the header excluded)."""
        total = 0
        for tensor in self.tensors:
            count = int(np.prod(tensor.shape)) if tensor.shape else 1
            kind = out_type(tensor.name, tensor.shape, outtype)
            total += count * (4 if kind == GGMLQuantizationType.F32 else 2)
        return total


# Tensors llama.cpp adds to activations (not multiplies by): its CPU backend needs them in F32.
_ALWAYS_F32 = ("token_types.weight", "position_embd.weight")


def out_type(name: str, shape: tuple[int, ...], outtype: str) -> GGMLQuantizationType:
    """Vectors (norms, biases) and embeddings added to activations stay F32, as llama.cpp's converter keeps
    them; other matrices take ``outtype``."""
    if len(shape) <= 1 or outtype == "F32" or name in _ALWAYS_F32:
        return GGMLQuantizationType.F32
    return GGMLQuantizationType.F16 if outtype == "F16" else GGMLQuantizationType.BF16


def write_plan(plan: OutputPlan, source: ModelDirectory, target: Path, outtype: str, progress: Progress) -> None:
    """Write ``plan`` as a GGUF file at ``target`` with matrices in ``outtype`` (F32, F16 or BF16).
    ``progress(done, total)`` is called after each tensor with bytes of output written."""
    writer = GGUFWriter(None, plan.arch)
    writer.add_file_type(FILE_TYPES[outtype])
    plan.metadata(writer)
    sizes: list[int] = []
    for tensor in plan.tensors:
        kind = out_type(tensor.name, tensor.shape, outtype)
        count = int(np.prod(tensor.shape)) if tensor.shape else 1
        if kind == GGMLQuantizationType.BF16:
            nbytes = count * 2
            writer.add_tensor_info(tensor.name, tensor.shape, np.dtype(np.float16), nbytes, raw_dtype=kind)
        else:
            dtype = np.dtype(np.float32 if kind == GGMLQuantizationType.F32 else np.float16)
            nbytes = count * dtype.itemsize
            writer.add_tensor_info(tensor.name, tensor.shape, dtype, nbytes)
        sizes.append(nbytes)
    total, done = sum(sizes), 0
    try:
        writer.write_header_to_file(target)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor, nbytes in zip(plan.tensors, sizes, strict=True):
            data = (tensor.computed() if tensor.computed else source.read(tensor.source)).astype(np.float32)
            if tensor.transform is not None:
                data = tensor.transform(data)
            writer.write_tensor_data(_encode(np.ascontiguousarray(data), out_type(tensor.name, tensor.shape, outtype)))
            done += nbytes
            progress(done, total)
    finally:
        writer.close()


def _encode(data: np.ndarray[Any, Any], kind: GGMLQuantizationType) -> np.ndarray[Any, Any]:
    if kind == GGMLQuantizationType.F32:
        return data.astype(np.float32)
    if kind == GGMLQuantizationType.F16:
        return data.astype(np.float16)
    encoded: np.ndarray[Any, Any] = gguf_quantize(data, kind)
    return encoded


def model_name(source: ModelDirectory) -> str:
    """``general.name``: the model's Hugging Face name when config.json has it, else the directory's name."""
    named = str(source.config.get("_name_or_path") or "").rstrip("/").rsplit("/", 1)[-1]
    return named or source.root.name
