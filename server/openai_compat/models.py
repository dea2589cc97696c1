"""``/v1/models`` from ``/api/tags``."""

from __future__ import annotations

from server.protocol import ollama as api
from server.protocol import openai as oai
from server.store.names import ModelName

from .common import (
    unix_time,
)


def to_model(name: str, modified_at: str) -> oai.Model:
    """A model as ``/v1/models`` shows it: ``owned_by`` is the namespace (``library``, or the user of an
    ``hf.co`` model); ``created`` is the modification time."""
    parsed = ModelName.try_parse(name)
    return oai.Model(id=name, created=unix_time(modified_at), owned_by=parsed.namespace if parsed else "")


def to_model_list(native: api.ListResponse) -> oai.ModelList:
    return oai.ModelList(data=[to_model(m.model or m.name, m.modified_at) for m in native.models] or None)
