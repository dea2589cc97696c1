"""Resolving a request's model name to what inference needs: files, layers, GGUF facts and capabilities."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from server.chat_template import ChatTemplate
from server.errors import CapabilityError, InvalidModelName, ModelNotFound, TemplateError
from server.gotemplate import Template
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
    template: Template | None = None  # the Modelfile TEMPLATE, parsed once; None without one
    jinja: ChatTemplate | None = None  # the GGUF chat template, compiled once; None without one (or broken)

    @property
    def chat_template(self) -> ChatTemplate | str | None:
        """The GGUF chat template compiled, or its text when it does not compile (rendering then raises)."""
        return self.jinja or self.info.chat_template or None

    @property
    def prompt_template(self) -> Template | str | None:
        """What prompts are rendered with: the parsed TEMPLATE, or its text when it does not parse (rendering
        then raises the parse error), or None for the GGUF's own chat template."""
        return self.template or self.content.template or None

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
    """Looks models up in the store. What a request needs of a model (layers, GGUF facts, capabilities, the
    parsed template) is computed once per manifest digest: a manifest names content-addressed blobs, so the
    same digest always means the same model."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[str, str, str, str], ResolvedModel] = {}

    def resolve(self, requested: str, *, missing: str) -> ResolvedModel:
        """Find ``requested`` or raise: ``InvalidModelName`` for a bad name, ``ModelNotFound`` with the
        endpoint's text (``missing`` is formatted with ``name``) when it is not in the store."""
        name = ModelName.try_parse(requested)
        if name is None:
            raise InvalidModelName()
        stored = self.store.get(name)
        if stored is None:
            raise ModelNotFound(missing.format(name=requested))
        cached = self._cache.get(stored.name.key)
        if cached is not None and cached.stored.digest == stored.digest:
            return dataclasses.replace(cached, requested=requested, stored=stored)
        content = self.store.content(stored)
        if content.model_path is None:
            raise ModelNotFound(missing.format(name=requested))
        info = read_gguf(content.model_path)
        resolved = ResolvedModel(
            name=stored.name,
            requested=requested,
            stored=stored,
            content=content,
            info=info,
            capabilities=tuple(capabilities(info, content)),
            template=_parse(content.template),
            jinja=_compile(info.chat_template),
        )
        self._cache[stored.name.key] = resolved
        return resolved


def _compile(source: str | None) -> ChatTemplate | None:
    if not source:
        return None
    try:
        return ChatTemplate(source)
    except TemplateError:
        return None


def _parse(text: str) -> Template | None:
    if not text:
        return None
    try:
        return Template.parse(text)
    except TemplateError:
        return None
