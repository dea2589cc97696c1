"""Go's ``json.Marshal`` of template values, on top of the project's Go-style encoder (``server.gojson``).

This module only decides member order, which ``server.gojson`` leaves to its caller: a ``Mapping`` is a Go map
(keys sorted by their text), a ``JSONObject`` is a marshalled Go struct (members in declaration order), and
values with ``go_json()`` marshal as what that returns. ``bytes`` become base64 text, as Go writes ``[]byte``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.gocompat import jsonenc as gojson

from .values import GoJSONMarshaler, is_sequence

__all__ = ["JSONObject", "encode"]


@dataclass(frozen=True)
class JSONObject:
    """A JSON object whose members keep their order, like a marshalled Go struct (a dict is a Go map: sorted)."""

    members: tuple[tuple[str, object], ...]


def _lower(value: object) -> Any:
    """Plain JSON data (dicts in output order) for ``value``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, GoJSONMarshaler):
        return _lower(value.go_json())
    if isinstance(value, JSONObject):
        return {key: _lower(item) for key, item in value.members}
    if isinstance(value, Mapping):
        mapping: Mapping[Any, object] = value
        return {str(key): _lower(mapping[key]) for key in sorted(mapping.keys(), key=str)}
    if is_sequence(value):
        sequence: Sequence[object] = value  # type: ignore[assignment]
        return [_lower(item) for item in sequence]
    raise ValueError(f"json: unsupported type: {type(value).__name__}")


def encode(value: object) -> str:
    """Go's ``json.Marshal`` of ``value`` as text; ``ValueError`` for NaN, infinities and unsupported types."""
    return gojson.dumps(_lower(value), sort_keys=False)
