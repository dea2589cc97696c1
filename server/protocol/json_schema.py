"""What the wire models' JSON schemas cannot say by themselves, added to the components of ``/openapi.json``.

Some request fields are typed ``Any`` in :mod:`server.protocol` because the service checks them and answers
with Ollama's texts (a ``keep_alive`` of seconds or a Go duration, ``stop`` as a string or a list ...); some are
optional in the models but refused by the service when absent (``model``); and every JSON integer is Go's
int64 on the wire (a larger one is a 400). :func:`refine` writes that into the schemas, named by component
(OpenAI's with the ``OpenAI`` prefix :mod:`server.api.openapi` gives them).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

# Fields the models type as Any (the service checks them, with Ollama's texts), documented by what they take.
_STRINGS = {"type": "array", "items": {"type": "string"}}
_KEEP_ALIVE = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]}
_THINK = {"anyOf": [{"type": "boolean"}, {"enum": ["low", "medium", "high", "max"]}, {"type": "null"}]}
_STOP = {"anyOf": [{"type": "string"}, _STRINGS, {"type": "null"}]}
_INPUT = {"anyOf": [{"type": "string"}, _STRINGS, {"type": "null"}]}
_CONTENT_PART = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": ["text", "image_url", "input_audio"]}, "text": {"type": "string"}},
}
REFINED: Mapping[str, Mapping[str, dict[str, Any]]] = {
    "GenerateRequest": {"keep_alive": _KEEP_ALIVE, "think": _THINK},
    "ChatRequest": {"keep_alive": _KEEP_ALIVE, "think": _THINK},
    "EmbedRequest": {"keep_alive": _KEEP_ALIVE, "input": _INPUT},
    "EmbeddingsRequest": {"keep_alive": _KEEP_ALIVE},
    "OpenAIMessage": {"content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _CONTENT_PART}]}},
    "OpenAIToolCallFunction": {"arguments": {"anyOf": [{"type": "string"}, {"type": "object"}, {"type": "null"}]}},
    "OpenAIChatCompletionRequest": {
        "messages": {"minItems": 1},
        "stop": _STOP,
        "keep_alive": _KEEP_ALIVE,
        "think": _THINK,
        "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]}, {"type": "object"}, {"type": "null"}]},
    },
    "OpenAICompletionRequest": {
        "stop": _STOP,
        "keep_alive": _KEEP_ALIVE,
        "prompt": {"anyOf": [{"type": "string"}, {**_STRINGS, "maxItems": 1}]},
    },
    "OpenAIEmbeddingRequest": {"keep_alive": _KEEP_ALIVE, "input": _INPUT},
}
# What the service refuses when absent ("model is required" ...), though the models default them.
REQUIRED: Mapping[str, list[str]] = {
    "GenerateRequest": ["model"],
    "ChatRequest": ["model"],
    "EmbedRequest": ["model", "input"],
    "EmbeddingsRequest": ["model"],
    "OpenAIChatCompletionRequest": ["model", "messages"],
    "OpenAIMessage": ["role", "content"],
    "OpenAICompletionRequest": ["model"],
    "OpenAIEmbeddingRequest": ["model", "input"],
}


def refine(schemas: dict[str, Any]) -> None:
    """Apply :data:`REFINED`, :data:`REQUIRED` and int64 bounds to ``schemas`` (component name -> schema), in
    place. A name or field that is not there is a ``KeyError``: the tables must follow the models."""
    for name, fields in REFINED.items():
        for field_name, schema in fields.items():
            schemas[name]["properties"][field_name].update(copy.deepcopy(schema))
    for name, required in REQUIRED.items():
        schemas[name]["required"] = required
    _bound_integers(schemas)


def _bound_integers(node: Any) -> None:
    """JSON integers are Go's int64 on the wire: a larger number is a 400, so the document says so."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            node.setdefault("minimum", -(2**63))
            node.setdefault("maximum", 2**63 - 1)
        for value in node.values():
            _bound_integers(value)
    elif isinstance(node, list):
        for value in node:
            _bound_integers(value)
