"""Manifests and the config blob, in Ollama's exact JSON shapes.

A manifest is written the way Ollama's Go code writes it (``json.NewEncoder(f).Encode``: compact, fields in
struct order, a trailing newline), so the manifest digest that ``list`` shows is the same for a model created
by Corral or by Ollama from the same layers. Reading accepts any manifest Ollama writes and keeps fields
Corral does not know about.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from server.errors import InvalidDigest
from server.gocompat import jsonenc as gojson
from server.store.blobs import Digest

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
_IMAGE = "application/vnd.ollama.image."


class MediaType:
    """Layer media types (``application/vnd.ollama.image.*``)."""

    MODEL = _IMAGE + "model"
    ADAPTER = _IMAGE + "adapter"
    PROJECTOR = _IMAGE + "projector"
    TEMPLATE = _IMAGE + "template"
    PROMPT = _IMAGE + "prompt"  # legacy alias of TEMPLATE
    SYSTEM = _IMAGE + "system"
    PARAMS = _IMAGE + "params"
    MESSAGES = _IMAGE + "messages"
    LICENSE = _IMAGE + "license"
    EMBED = _IMAGE + "embed"  # obsolete, ignored


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: Digest
    size: int
    from_: str = ""
    name: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.from_:
            out["from"] = self.from_
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def from_json(cls, raw: Any) -> Layer:
        if not isinstance(raw, dict):
            raise ValueError("layer is not an object")
        return cls(
            media_type=str(raw.get("mediaType", "")),
            digest=Digest.parse(str(raw.get("digest", ""))),
            size=int(raw.get("size", 0)),
            from_=str(raw.get("from", "") or ""),
            name=str(raw.get("name", "") or ""),
        )


@dataclass(frozen=True)
class Manifest:
    config: Layer
    layers: tuple[Layer, ...]
    schema_version: int = 2
    media_type: str = MANIFEST_MEDIA_TYPE

    def encode(self) -> bytes:
        """The manifest file's bytes, exactly as Ollama writes them."""
        return gojson.encode(
            {
                "schemaVersion": self.schema_version,
                "mediaType": self.media_type,
                "config": self.config.to_json(),
                "layers": [layer.to_json() for layer in self.layers],
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Parse manifest bytes; raises ``ValueError`` for anything that is not a usable manifest."""
        try:
            raw = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"manifest is not JSON: {exc}") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("layers", []), list):
            raise ValueError("manifest is not an object with layers")
        try:
            return cls(
                config=Layer.from_json(raw.get("config")),
                layers=tuple(Layer.from_json(item) for item in raw.get("layers") or []),
                schema_version=int(raw.get("schemaVersion", 2)),
                media_type=str(raw.get("mediaType", MANIFEST_MEDIA_TYPE)),
            )
        except (InvalidDigest, TypeError) as exc:  # a bad digest or a size of the wrong JSON type
            raise ValueError(f"manifest has an invalid layer: {exc}") from exc

    @property
    def size(self) -> int:
        """Sum of all layer sizes and the config blob's, as ``/api/tags`` reports it."""
        return self.config.size + sum(layer.size for layer in self.layers)

    def digests(self) -> set[Digest]:
        return {self.config.digest, *(layer.digest for layer in self.layers)}

    def find(self, media_type: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.media_type == media_type), None)

    def find_all(self, media_type: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.media_type == media_type]


@dataclass(frozen=True)
class ModelConfig:
    """The config blob (Ollama's ``ConfigV2``). ``details`` in API responses come from here."""

    model_format: str = "gguf"
    model_family: str = ""
    model_families: tuple[str, ...] = ()
    model_type: str = ""
    file_type: str = ""
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    capabilities: tuple[str, ...] = ()
    context_length: int = 0
    embedding_length: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def encode(self, layer_digests: list[Digest]) -> bytes:
        """Bytes of the config blob in Go struct order; ``rootfs`` lists the layer digests as Ollama did."""
        out: dict[str, Any] = {
            "model_format": self.model_format,
            "model_family": self.model_family,
            "model_families": list(self.model_families) or None,
            "model_type": self.model_type,
            "file_type": self.file_type,
        }
        optional: dict[str, Any] = {
            "renderer": self.renderer,
            "parser": self.parser,
            "requires": self.requires,
            "capabilities": list(self.capabilities),
            "context_length": self.context_length,
            "embedding_length": self.embedding_length,
        }
        out.update({key: value for key, value in optional.items() if value})
        out.update(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [str(d) for d in layer_digests]},
            }
        )
        return gojson.encode(out)

    @classmethod
    def decode(cls, data: bytes) -> ModelConfig:
        """Parse a config blob leniently: missing fields take defaults, unknown ones are kept in ``extra``."""
        try:
            raw = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        known = {
            "model_format",
            "model_family",
            "model_families",
            "model_type",
            "file_type",
            "renderer",
            "parser",
            "requires",
            "capabilities",
            "context_length",
            "embedding_length",
        }
        return cls(
            model_format=str(raw.get("model_format") or ""),
            model_family=str(raw.get("model_family") or ""),
            model_families=tuple(str(x) for x in raw.get("model_families") or ()),
            model_type=str(raw.get("model_type") or ""),
            file_type=str(raw.get("file_type") or ""),
            renderer=str(raw.get("renderer") or ""),
            parser=str(raw.get("parser") or ""),
            requires=str(raw.get("requires") or ""),
            capabilities=tuple(str(x) for x in raw.get("capabilities") or ()),
            context_length=int(raw.get("context_length") or 0),
            embedding_length=int(raw.get("embedding_length") or 0),
            extra={k: v for k, v in raw.items() if k not in known},
        )
