"""Resolving a request's model name to what inference needs: files, layers, GGUF facts and capabilities."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from server.errors import CapabilityError, InvalidModelName, ModelNotFound
from server.service.management import capabilities
from server.store.gguf_info import GGUFInfo, read_gguf
from server.store.names import ModelName
from server.store.store import ModelContent, Store, StoredManifest


@dataclass(frozen=True)
class ResolvedModel:
    name: ModelName
    requested: str
    stored: StoredManifest
    content: ModelContent
    info: GGUFInfo
    capabilities: tuple[str, ...]

    @property
    def model_path(self) -> Path:
        assert self.content.model_path is not None
        return self.content.model_path

    def require(self, capability: str, *, full_name: bool = False, action: str = "") -> None:
        """Raise Ollama's capability error when the model lacks ``capability``: ``<model> does not support
        <action or capability>``, the model quoted as requested or (``full_name``) fully qualified."""
        if capability not in self.capabilities:
            who = self.name.full if full_name else f'"{self.requested}"'
            raise CapabilityError(f"{who} does not support {action or capability}")


class ModelResolver:
    """Looks models up in the store; GGUF headers are parsed once per blob (blobs never change)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._gguf: dict[Path, GGUFInfo] = {}

    def resolve(self, requested: str, *, missing: str) -> ResolvedModel:
        """Find ``requested`` or raise: ``InvalidModelName`` for a bad name, ``ModelNotFound`` with the
        endpoint's text (``missing`` is formatted with ``name``) when it is not in the store."""
        name = ModelName.try_parse(requested)
        if name is None:
            raise InvalidModelName()
        stored = self.store.get(name)
        if stored is None:
            raise ModelNotFound(missing.format(name=requested))
        content = self.store.content(stored)
        if content.model_path is None:
            raise ModelNotFound(missing.format(name=requested))
        info = self._gguf.get(content.model_path)
        if info is None:
            info = self._gguf[content.model_path] = read_gguf(content.model_path)
        return ResolvedModel(
            name=stored.name,
            requested=requested,
            stored=stored,
            content=content,
            info=info,
            capabilities=tuple(capabilities(info, content)),
        )
