"""JSON encoded the way Go's ``encoding/json`` writes it.

Ollama's on-disk manifests, config and params blobs, template ``json`` output and API bodies are produced by
Go, so byte-for-byte parity needs Go's choices: compact separators; ``<``, ``>``, ``&``, U+2028 and U+2029
escaped as ``\\u003c`` and so on; other non-ASCII text kept as UTF-8; floats in Go's shortest form (``1`` not
``1.0``, ``0.00001`` not ``1e-05``, ``1e-7`` below 1e-6); map keys sorted when asked (Go sorts maps; structs
keep declaration order, so pass dicts in that order and ``sort_keys=False``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_EXPONENT = re.compile(r"e([+-])0*(\d)")


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Compact Go-style JSON text for ``value`` (no trailing newline).

    Supports dicts (string keys), lists, tuples, str, int, float, bool and None. NaN and infinities raise
    ``ValueError`` as Go's encoder refuses them.
    """
    parts: list[str] = []
    _encode(value, parts, sort_keys)
    return "".join(parts)


def encode(value: Any, *, sort_keys: bool = False) -> bytes:
    """What Go's ``json.NewEncoder(w).Encode(value)`` writes: the compact text and a newline."""
    return (dumps(value, sort_keys=sort_keys) + "\n").encode()


def json_type(value: Any) -> str:
    """The JSON type name Go's decoder puts in its errors (``cannot unmarshal array into ...``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object" if isinstance(value, Mapping) else "value"


def go_float(number: float) -> str:
    """Format a float as Go's JSON encoder does for float64."""
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"json: unsupported value: {number}")
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    magnitude = abs(number)
    if 1e-6 <= magnitude < 1e21:
        text = format(Decimal(repr(number)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return _EXPONENT.sub(r"e\1\2", repr(number))


def _string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    if any(ch in encoded for ch in _GO_ESCAPES):
        encoded = "".join(_GO_ESCAPES.get(ch, ch) for ch in encoded)
    return encoded


def _encode(value: Any, out: list[str], sort_keys: bool) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(go_float(value))
    elif isinstance(value, Mapping):
        items = sorted(value.items()) if sort_keys else list(value.items())
        out.append("{")
        for index, (key, item) in enumerate(items):
            if index:
                out.append(",")
            out.append(_string(str(key)))
            out.append(":")
            _encode(item, out, sort_keys)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out, sort_keys)
        out.append("]")
    else:
        raise TypeError(f"json: unsupported type: {type(value).__name__}")
