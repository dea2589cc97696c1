"""Shared wire plumbing: request decoding with Ollama's error texts, and Go-style JSON responses.

Request bodies are decoded strictly (a number where a string belongs is an error, as in Go), unknown fields
are ignored (as Go's decoder does), and errors read like Go's ``encoding/json`` messages, e.g.
``json: cannot unmarshal number into Go struct field CreateRequest.model of type string``.
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.responses import Response

from server.errors import BadRequest
from server.gocompat import jsonenc as gojson
from server.gocompat.jsonenc import json_type

M = TypeVar("M", bound="WireModel")

_GO_TYPES = {
    "string_type": "string",
    "int_type": "int",
    "int_from_float": "int",
    "float_type": "float64",
    "bool_type": "bool",
    "list_type": "[]interface {}",
    "dict_type": "map[string]interface {}",
    "model_type": "struct",
    "model_attributes_type": "struct",
}


class WireModel(BaseModel):
    """Base of every request and response body. ``go_package`` and ``go_name`` name the Go type Ollama decodes
    the body into, for error texts that read like Go's."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)
    go_package: ClassVar[str] = "api"
    go_name: ClassVar[str] = ""

    def to_wire(self) -> dict[str, Any]:
        """The JSON object as Ollama sends it: fields left as None are omitted (Go's ``omitempty``)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_body(model: type[M], body: bytes) -> M:
    """Decode a JSON request body into ``model`` or raise ``BadRequest`` with Ollama's texts."""
    if not body.strip():
        raise BadRequest("missing request body")
    try:
        raw = json.loads(body, parse_constant=_not_json, parse_float=_float64, parse_int=_int64)
    except json.JSONDecodeError as exc:
        raise BadRequest(_syntax_error(body, exc)) from exc
    except UnicodeDecodeError as exc:
        raise BadRequest("invalid character in request body: not UTF-8") from exc
    if not isinstance(raw, dict):
        raise BadRequest(
            f"json: cannot unmarshal {json_type(raw)} into Go value of type {model.go_package}.{model.go_name}"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(_type_error(model, raw, exc)) from exc


def _not_json(name: str) -> Any:
    """``NaN``/``Infinity``: Python's decoder takes them, JSON (and Go) does not; a NaN option or keep_alive
    must never reach the scheduler or llama.cpp."""
    raise BadRequest(f"invalid character '{name.lstrip('-')[0]}' looking for beginning of value")


def _float64(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(f"json: cannot unmarshal number {text} into Go value of type float64")
    return value


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise BadRequest(f"json: cannot unmarshal number {text} into Go value of type int64")
    return value


# What Go's decoder says it was looking for, by what Python's decoder expected.
_GO_CONTEXT = {
    "Expecting value": "looking for beginning of value",
    "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
    "Expecting ':' delimiter": "after object key",
    "Expecting ',' delimiter": "after object key:value pair",
}


def _syntax_error(body: bytes, exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(exc.doc.rstrip()):
        return "unexpected EOF"
    char = exc.doc[exc.pos]
    context = _GO_CONTEXT.get(exc.msg, "looking for beginning of value")
    if exc.msg == "Expecting ',' delimiter" and _innermost_container(exc.doc, exc.pos) == "[":
        context = "after array element"
    return f"invalid character {char!r} {context}"


def _innermost_container(doc: str, pos: int) -> str:
    """``{`` or ``[``: the container open at ``pos`` (strings skipped)."""
    stack: list[str] = []
    in_string = escaped = False
    for char in doc[:pos]:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _type_error(model: type[WireModel], raw: dict[str, Any], exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"] if not isinstance(part, int)]
    field = ".".join(location) or "?"
    value: Any = raw
    for part in error["loc"]:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            break
    if error["type"] in _GO_TYPES:
        return (
            f"json: cannot unmarshal {json_type(value)} into Go struct field {model.go_name}.{field} "
            f"of type {_GO_TYPES[error['type']]}"
        )
    return f"invalid value for field {field}: {error['msg']}"


class GoJSONResponse(Response):
    """A JSON response encoded the way Ollama's Go server encodes it."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        if isinstance(content, WireModel):
            content = content.to_wire()
        return gojson.dumps(content).encode()


def ndjson_line(item: WireModel | dict[str, Any]) -> bytes:
    """One NDJSON line: compact Go-style JSON and a newline."""
    payload = item.to_wire() if isinstance(item, WireModel) else item
    return gojson.encode(payload)
