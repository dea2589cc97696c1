"""GGUF metadata without loading weights.

The file is memory-mapped and only its header is parsed: key/value pairs and tensor descriptors, with the
``gguf`` package's type tables (value types, quantization block sizes, file-type names). Large arrays (the
tokenizer's vocabulary) are skipped unless asked for, which keeps ``show`` and ``create`` fast on models with
a 262k-token vocabulary where ``gguf.GGUFReader`` takes seconds. The tensor table is checked against the file
size, so a truncated download or upload is rejected before it reaches the store.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType

from server.errors import InvalidModelFile

MAGIC = b"GGUF"
SHORT_ARRAY = 5
NOT_GGUF = "supplied file was not in GGUF format"

_SCALARS: dict[int, str] = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type: str
    shape: tuple[int, ...]

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class GGUFInfo:
    """What Corral needs to know about a GGUF file. ``kv`` holds every key; long arrays are ``[]`` unless the
    file was read with ``full_arrays=True``."""

    version: int
    kv: dict[str, Any]
    tensors: list[TensorInfo] = field(repr=False)
    array_lengths: dict[str, int] = field(repr=False)

    @property
    def architecture(self) -> str:
        return str(self.kv.get("general.architecture", ""))

    def arch_value(self, suffix: str) -> Any:
        return self.kv.get(f"{self.architecture}.{suffix}")

    @property
    def parameter_count(self) -> int:
        declared = self.kv.get("general.parameter_count")
        if isinstance(declared, int) and declared > 0:
            return declared
        return sum(t.elements for t in self.tensors)

    @property
    def file_type(self) -> str:
        """Quantization name as Ollama prints it (``Q4_K_M``, ``F16``, ``Q8_0``)."""
        raw = self.kv.get("general.file_type")
        if isinstance(raw, int):
            try:
                name = LlamaFileType(raw).name
            except ValueError:
                return "unknown"
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        return ""

    @property
    def context_length(self) -> int:
        return int(self.arch_value("context_length") or 0)

    @property
    def embedding_length(self) -> int:
        return int(self.arch_value("embedding_length") or 0)

    @property
    def chat_template(self) -> str:
        return str(self.kv.get("tokenizer.chat_template") or "")

    @property
    def is_embedding(self) -> bool:
        """Ollama's rule: a model with ``<arch>.pooling_type`` is an embedding model."""
        return f"{self.architecture}.pooling_type" in self.kv

    @property
    def has_vision(self) -> bool:
        return any(key.startswith("vision.") or key.endswith(".vision.block_count") for key in self.kv)

    def model_info(self) -> dict[str, Any]:
        """``/api/show`` ``model_info``: every key but ``general.name`` and the chat template, plus
        ``general.parameter_count``."""
        info = {k: v for k, v in self.kv.items() if k not in {"general.name", "tokenizer.chat_template"}}
        info["general.parameter_count"] = self.parameter_count
        return dict(sorted(info.items()))


def _shortest(kind: int, value: Any) -> Any:
    # A float32 widened to float64 prints as 9.999999747378752e-06; Go prints the float32 as 1e-05.
    if kind == GGUFValueType.FLOAT32:
        return float(str(numpy.float32(value)))
    return value


def read_gguf(path: Path, *, full_arrays: bool = False) -> GGUFInfo:
    """Parse the header of the GGUF file at ``path``.

    Raises ``InvalidModelFile`` with Ollama's text when the file is not GGUF, and with a clear reason when it
    is truncated or malformed.
    """
    try:
        with path.open("rb") as handle:
            if path.stat().st_size < 24:
                raise InvalidModelFile(NOT_GGUF)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if data[:4] != MAGIC:
                    raise InvalidModelFile(NOT_GGUF)
                return _Parser(data, full_arrays).parse()
    except RecursionError as exc:  # arrays nested thousands deep: damaged or hostile, never a model
        raise InvalidModelFile(f"{NOT_GGUF}: arrays nested too deeply") from exc
    except (OSError, ValueError) as exc:
        raise InvalidModelFile(f"{NOT_GGUF}: {exc}") from exc


class _Parser:
    def __init__(self, data: mmap.mmap, full_arrays: bool) -> None:
        self.data = data
        self.pos = 4
        self.full_arrays = full_arrays
        self.array_lengths: dict[str, int] = {}

    def parse(self) -> GGUFInfo:
        version = self._scalar("<I")
        if version < 2:
            raise InvalidModelFile(f"unsupported GGUF version {version}")
        tensor_count = self._scalar("<Q")
        kv_count = self._scalar("<Q")
        kv: dict[str, Any] = {}
        for _ in range(kv_count):
            key = self._string()
            kv[key] = self._value(key, self._scalar("<I"))
        tensors, spans = [], []
        for _ in range(tensor_count):
            name = self._string()
            dims = tuple(self._scalar("<Q") for _ in range(self._scalar("<I")))
            kind = self._scalar("<I")
            offset = self._scalar("<Q")
            try:
                qtype = GGMLQuantizationType(kind)
                block, type_size = GGML_QUANT_SIZES[qtype]
            except (ValueError, KeyError) as exc:
                raise InvalidModelFile(f"tensor {name!r} has unknown type {kind}") from exc
            tensor = TensorInfo(name, qtype.name, dims)
            tensors.append(tensor)
            spans.append(offset + tensor.elements // block * type_size)
        alignment = int(kv.get("general.alignment", 32)) or 32
        data_start = -(-self.pos // alignment) * alignment
        needed = data_start + max(spans, default=0)
        if needed > len(self.data):
            raise InvalidModelFile(f"GGUF file is truncated: {len(self.data)} of {needed} bytes present")
        return GGUFInfo(version=version, kv=kv, tensors=tensors, array_lengths=self.array_lengths)

    def _scalar(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise InvalidModelFile("GGUF file is truncated in its header")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def _string(self) -> str:
        length = self._scalar("<Q")
        end = self.pos + length
        if end > len(self.data):
            raise InvalidModelFile("GGUF file is truncated in its header")
        text = self.data[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end
        return text

    def _value(self, key: str, kind: int) -> Any:
        if kind == GGUFValueType.STRING:
            return self._string()
        if kind == GGUFValueType.ARRAY:
            return self._array(key)
        fmt = _SCALARS.get(kind)
        if fmt is None:
            raise InvalidModelFile(f"GGUF key {key!r} has unknown value type {kind}")
        return _shortest(kind, self._scalar(fmt))

    def _array(self, key: str) -> list[Any]:
        kind = self._scalar("<I")
        count = self._scalar("<Q")
        self.array_lengths[key] = count
        keep = self.full_arrays or count <= SHORT_ARRAY
        if kind == GGUFValueType.STRING:
            items = []
            for _ in range(count):
                if keep:
                    items.append(self._string())
                else:
                    self.pos += 8 + self._peek_length()
            if self.pos > len(self.data):
                raise InvalidModelFile("GGUF file is truncated in its header")
            return items
        if kind == GGUFValueType.ARRAY:
            return [self._array(key) for _ in range(count)]
        fmt = _SCALARS.get(kind)
        if fmt is None:
            raise InvalidModelFile(f"GGUF key {key!r} has unknown array type {kind}")
        size = struct.calcsize(fmt)
        if not keep:
            self.pos += size * count
            return []
        return [_shortest(kind, self._scalar(fmt)) for _ in range(count)]

    def _peek_length(self) -> int:
        if self.pos + 8 > len(self.data):
            raise InvalidModelFile("GGUF file is truncated in its header")
        (length,) = struct.unpack_from("<Q", self.data, self.pos)
        return int(length)
