"""How Python values stand in for the Go values a template sees.

==========================  ===========================================================================
Go                          Python
==========================  ===========================================================================
nil (untyped)               ``None``
bool / int / float64        ``bool`` / ``int`` / ``float``
string                      ``str`` (``len``, ``index`` and ``slice`` count UTF-8 bytes, as Go does)
slice                       any ``Sequence`` that is not ``str``/``bytes`` (``bytes`` is ``[]byte``)
map                         any ``Mapping``; a missing key yields ``None`` (``missingkey=zero``)
struct                      a ``GoStruct`` dataclass; fields are read by their Go names
fmt.Stringer                anything with ``go_string() -> str``; printing uses it
json.Marshaler              anything with ``go_json() -> object`` (a JSON-ready value); ``json`` uses it
==========================  ===========================================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

__all__ = [
    "GoError",
    "GoJSONMarshaler",
    "GoStringer",
    "GoStruct",
    "basic_kind",
    "go_field_name",
    "go_type_name",
    "is_sequence",
    "is_true",
    "sorted_keys",
]


class GoError(Exception):
    """A failure inside a value operation or builtin; the executor adds the template location."""


@runtime_checkable
class GoStringer(Protocol):
    """A value that prints as ``go_string()``, like a Go type with a ``String()`` method."""

    def go_string(self) -> str: ...


@runtime_checkable
class GoJSONMarshaler(Protocol):
    """A value whose JSON form is the JSON of ``go_json()`` (see ``gojson.encode``)."""

    def go_json(self) -> object: ...


def go_field_name(attribute: str) -> str:
    """The Go name of a snake_case attribute: ``tool_call_id`` -> ``ToolCallID``, ``is_think_set`` -> ``IsThinkSet``."""
    return "".join("ID" if part == "id" else part[:1].upper() + part[1:] for part in attribute.split("_"))


class GoStruct:
    """Base for dataclasses that templates read like Go structs: ``.ToolCallID`` reads ``tool_call_id``."""

    def go_field(self, name: str) -> object:
        """The value of the field whose Go name is ``name``; ``KeyError`` when there is none."""
        if dataclasses.is_dataclass(self):
            for field in dataclasses.fields(self):
                if go_field_name(field.name) == name:
                    return getattr(self, field.name)
        raise KeyError(name)

    def go_values(self) -> list[object]:
        """Field values in declaration order (how ``%v`` prints a struct)."""
        if dataclasses.is_dataclass(self):
            return [getattr(self, field.name) for field in dataclasses.fields(self)]
        return []


def is_sequence(value: object) -> bool:
    """True for values that behave like a Go slice."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def is_true(value: object) -> bool:
    """Go template truth: false, 0, nil and empty strings, slices and maps are false; structs are true."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | bytes | Mapping) or is_sequence(value):
        return len(value) > 0  # type: ignore[arg-type]
    return True


def basic_kind(value: object) -> str:
    """The comparison class of a value: bool, int, float, string, nil or other (Go's ``basicKind``)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def go_type_name(value: object) -> str:
    """The Go type name of a value, as it appears in fmt's ``%!v(TYPE=...)`` and in error messages."""
    simple = {"bool": "bool", "int": "int", "float": "float64", "string": "string", "nil": "<nil>"}
    kind = basic_kind(value)
    if kind in simple:
        return simple[kind]
    if isinstance(value, bytes):
        return "[]uint8"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if is_sequence(value):
        return "[]interface {}"
    return type(value).__name__


def _key_order(key: object) -> tuple[int, object]:
    if isinstance(key, bool):
        return (0, key)
    if isinstance(key, int | float):
        return (1, key)
    if isinstance(key, str):
        return (2, key)
    return (3, str(key))


def sorted_keys(mapping: Mapping[object, object]) -> list[object]:
    """Map keys in Go's order (fmt printing and ``range``): numbers numerically, strings lexically."""
    return sorted(mapping.keys(), key=_key_order)
