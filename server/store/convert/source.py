"""A Hugging Face model directory as the converter reads it: ``config.json``, the ``*.safetensors`` shards and
the tokenizer files, all read with the ``safetensors`` package and numpy (no torch).

Tensors are read lazily, one at a time, so converting a model needs about one tensor of memory beyond the
output being written. BF16 tensors (which numpy has no type for) are widened to float32 exactly.

The other files (config, tokenizer, vocabulary) are parsed whole, so each is bounded by ``METADATA_LIMIT``
before anything reads it: real ones are a few MB (a 256k-token ``tokenizer.json`` is about 35 MB), and an
oversized one would otherwise take the server's memory with it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open

from server.errors import BadRequest

CONFIG = "config.json"
METADATA_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class SourceTensor:
    """One tensor of a shard: its name, dtype (safetensors spelling, e.g. ``F32``, ``BF16``) and shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    shard: Path


class ModelDirectory:
    """Read access to a safetensors model directory. Raises BadRequest, naming the file, for anything missing
    or unreadable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = self.config_of(root)
        shards = sorted(p for p in root.rglob("*.safetensors") if p.is_file())
        if not shards:
            raise BadRequest("no *.safetensors files were supplied")
        self.tensors: dict[str, SourceTensor] = {}
        for shard in shards:
            for tensor in _header(shard):
                self.tensors[tensor.name] = tensor

    @staticmethod
    def config_of(root: Path) -> dict[str, Any]:
        """``config.json`` of ``root``; BadRequest when it is missing or not a JSON object, or when any file
        but a shard exceeds ``METADATA_LIMIT``."""
        _check_metadata_sizes(root)
        return _json(root, CONFIG, required=True)

    def json(self, name: str, *, required: bool = False) -> dict[str, Any]:
        """A JSON file of the directory as a dict; ``{}`` when it is absent (BadRequest if ``required``)."""
        return _json(self.root, name, required=required)

    def has(self, name: str) -> bool:
        return (self.root / name).is_file()

    def read(self, name: str) -> np.ndarray[Any, Any]:
        """The tensor ``name`` as a numpy array (float32 for BF16 sources)."""
        tensor = self.tensors[name]
        if tensor.dtype == "BF16":
            return _read_bf16(tensor)
        with safe_open(str(tensor.shard), framework="numpy") as handle:
            array: np.ndarray[Any, Any] = handle.get_tensor(name)
        return array

    def names(self) -> Iterator[str]:
        """Tensor names in a stable order (sorted), whatever the shard layout."""
        yield from sorted(self.tensors)


def _check_metadata_sizes(root: Path) -> None:
    """BadRequest for any file other than a shard that is larger than ``METADATA_LIMIT``."""
    for path in root.rglob("*"):
        if path.suffix == ".safetensors" or not path.is_file():
            continue
        size = path.stat().st_size
        if size > METADATA_LIMIT:
            raise BadRequest(
                f"{path.relative_to(root)} is {size} bytes: tokenizer and config files "
                f"over {METADATA_LIMIT // (1024 * 1024)} MiB are refused"
            )


def _json(root: Path, name: str, *, required: bool) -> dict[str, Any]:
    path = root / name
    if not path.is_file():
        if required:
            raise BadRequest(f"{name} is missing: a safetensors model needs its {name}")
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise BadRequest(f"{name} is not a JSON object")
    return loaded


def _header(shard: Path) -> list[SourceTensor]:
    try:
        with shard.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise BadRequest(f"{shard.name} is not a safetensors file: {exc}") from exc
    out = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or "dtype" not in entry or "shape" not in entry:
            raise BadRequest(f"{shard.name}: tensor {name!r} has no dtype or shape")
        out.append(SourceTensor(name, str(entry["dtype"]), tuple(int(d) for d in entry["shape"]), shard))
    return out


def _read_bf16(tensor: SourceTensor) -> np.ndarray[Any, Any]:
    """BF16 is the top half of a float32: widen by shifting the 16 bits up."""
    with tensor.shard.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
        start, end = header[tensor.name]["data_offsets"]
        handle.seek(8 + length + int(start))
        raw = np.frombuffer(handle.read(int(end) - int(start)), dtype="<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(tensor.shape)
