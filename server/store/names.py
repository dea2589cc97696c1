"""Model names: ``[scheme://][host/][namespace/]model[:tag]``, parsed and validated as Ollama does.

A name is split from the right (tag after the last ``:`` that follows the last ``/``, then model, namespace,
host), missing parts take the defaults ``registry.ollama.ai``, ``library`` and ``latest``, and every part is
checked before the name is ever turned into a path, so a name can never point outside the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from server.errors import InvalidModelName

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-:]*")


@dataclass(frozen=True)
class ModelName:
    """A fully qualified, validated model name. Compare with ``key`` for case-insensitive identity."""

    host: str
    namespace: str
    model: str
    tag: str
    scheme: str = DEFAULT_SCHEME

    @classmethod
    def parse(cls, text: str) -> ModelName:
        """Parse and validate ``text``, filling defaults. Raises ``InvalidModelName`` for anything invalid."""
        name = _split(text)
        if name is None:
            raise InvalidModelName()
        return name

    @classmethod
    def try_parse(cls, text: str) -> ModelName | None:
        return _split(text)

    @property
    def display(self) -> str:
        """The shortest name Ollama displays: ``model:tag``, ``ns/model:tag`` or ``host/ns/model:tag``.
        Default parts are recognised in any case, as Ollama compares them case-insensitively."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def full(self) -> str:
        """``host/namespace/model:tag``, the form Ollama uses in capability errors."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Case-folded identity: two names with the same key are the same model."""
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())

    @property
    def manifest_path(self) -> PurePosixPath:
        """Path of the manifest relative to ``manifests/``: ``host/namespace/model/tag``."""
        return PurePosixPath(self.host, self.namespace, self.model, self.tag)

    @property
    def repository(self) -> str:
        """``namespace/model``, the registry repository path."""
        return f"{self.namespace}/{self.model}"

    def __str__(self) -> str:
        return self.display


def _split(text: str) -> ModelName | None:
    scheme = DEFAULT_SCHEME
    rest = text
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        if scheme not in {"http", "https"}:
            return None
    tag = DEFAULT_TAG
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        tag = rest[colon + 1 :]
        rest = rest[:colon]
        if not tag:
            return None
    parts = rest.split("/")
    if len(parts) > 3:
        # Ollama folds the extra parts into the host, which then fails validation.
        parts = ["/".join(parts[:-2]), parts[-2], parts[-1]]
    parts = [DEFAULT_HOST, DEFAULT_NAMESPACE][: 3 - len(parts)] + parts
    host, namespace, model = parts
    if not (_valid(host, _HOST, 350) and _valid(namespace, _NAMESPACE, 80)):
        return None
    if not (_valid(model, _PART, 80) and _valid(tag, _PART, 80)):
        return None
    return ModelName(host=host, namespace=namespace, model=model, tag=tag, scheme=scheme)


def _valid(part: str, pattern: re.Pattern[str], limit: int) -> bool:
    return 0 < len(part) <= limit and pattern.fullmatch(part) is not None


def display_name(text: str) -> str:
    """The display form of a model name, or ``text`` unchanged when it does not parse."""
    parsed = ModelName.try_parse(text)
    return parsed.display if parsed else text
