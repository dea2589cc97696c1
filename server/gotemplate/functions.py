"""Functions a template can call: Go's builtins plus the four Ollama adds.

Each function takes its evaluated arguments and returns a value, or raises ``GoError`` with the text Go's
function would return as its error (the executor prefixes ``error calling NAME:``). ``and`` and ``or`` are
listed for arity checks; the executor evaluates them lazily itself, returning the deciding operand as Go does.
"""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .data import ToolProperty
from .gofmt import sprint, sprintf, sprintln
from .gojson import encode
from .values import GoError, basic_kind, go_type_name, is_sequence, is_true

__all__ = ["FUNCTIONS", "Function", "equal"]


@dataclass(frozen=True)
class Function:
    """A callable with Go's arity: exactly ``min_args`` arguments, or at least that many when ``variadic``."""

    call: Callable[[Sequence[object]], object]
    min_args: int
    variadic: bool = False


def _first_deciding(args: Sequence[object], want: bool) -> object:
    for arg in args:
        if is_true(arg) is want:
            return arg
    return args[-1]


def _pair_kinds(a: object, b: object) -> tuple[str, str]:
    return basic_kind(a), basic_kind(b)


def equal(a: object, b: object) -> bool:
    """Go's ``eq`` on two values; ``GoError`` for incompatible or non-comparable types."""
    k1, k2 = _pair_kinds(a, b)
    if k1 == "nil" or k2 == "nil":
        return a is None and b is None
    if k1 != k2:
        raise GoError("incompatible types for comparison")
    if k1 == "other":
        for value in (a, b):
            if isinstance(value, Mapping) or is_sequence(value):
                raise GoError(f"non-comparable type {go_type_name(value)}")
    return a == b


def _eq(args: Sequence[object]) -> bool:
    if len(args) < 2:
        raise GoError("missing argument for comparison")
    return any(equal(args[0], other) for other in args[1:])


def _less(a: object, b: object) -> bool:
    k1, k2 = _pair_kinds(a, b)
    if k1 in ("nil", "other", "bool") or k2 in ("nil", "other", "bool"):
        raise GoError("invalid type for comparison")
    if k1 != k2:
        raise GoError("incompatible types for comparison")
    return bool(a < b)  # type: ignore[operator]


def _lt(args: Sequence[object]) -> bool:
    return _less(args[0], args[1])


def _le(args: Sequence[object]) -> bool:
    return _less(args[0], args[1]) or equal(args[0], args[1])


def _gt(args: Sequence[object]) -> bool:
    return not _le(args)


def _ge(args: Sequence[object]) -> bool:
    return not _less(args[0], args[1])


def _index_value(index: object, limit: int) -> int:
    if index is None:
        raise GoError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise GoError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > limit:
        raise GoError(f"index out of range: {index}")
    return index


def _index(args: Sequence[object]) -> object:
    item = args[0]
    if item is None:
        raise GoError("index of untyped nil")
    for index in args[1:]:
        if item is None:
            raise GoError("index of nil pointer")
        if isinstance(item, str):
            item = item.encode("utf-8", "surrogatepass")
        if isinstance(item, bytes) or is_sequence(item):
            sequence: Sequence[Any] = item  # type: ignore[assignment]
            at = _index_value(index, len(sequence))
            if at == len(sequence):
                raise GoError(f"index out of range: {at}")
            item = sequence[at]
        elif isinstance(item, Mapping):
            try:
                item = item.get(index)
            except TypeError:
                raise GoError(f"value has type {go_type_name(index)}; should be string") from None
        else:
            raise GoError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(args: Sequence[object]) -> object:
    item, indexes = args[0], args[1:]
    if item is None:
        raise GoError("slice of untyped nil")
    if len(indexes) > 3:
        raise GoError(f"too many slice indexes: {len(indexes)}")
    text = isinstance(item, str)
    if isinstance(item, str):
        if len(indexes) == 3:
            raise GoError("cannot 3-index slice a string")
        item = item.encode("utf-8", "surrogatepass")
    if not (isinstance(item, bytes) or is_sequence(item)):
        raise GoError(f"can't slice item of type {go_type_name(item)}")
    sequence: Sequence[Any] = item  # type: ignore[assignment]
    bounds = [0, len(sequence), len(sequence)]
    for position, index in enumerate(indexes):
        bounds[position] = _index_value(index, len(sequence))
    if bounds[0] > bounds[1]:
        raise GoError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3 and bounds[1] > bounds[2]:
        raise GoError(f"invalid slice index: {bounds[1]} > {bounds[2]}")
    result = sequence[bounds[0] : bounds[1]]
    return result.decode("utf-8", "replace") if isinstance(result, bytes) and text else result


def _len(args: Sequence[object]) -> int:
    item = args[0]
    if item is None:
        raise GoError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogatepass"))
    if isinstance(item, bytes | Mapping) or is_sequence(item):
        return len(item)  # type: ignore[arg-type]
    raise GoError(f"len of type {go_type_name(item)}")


def _printf(args: Sequence[object]) -> str:
    fmt = args[0]
    if not isinstance(fmt, str):
        raise GoError(f"wrong type for value; expected string; got {go_type_name(fmt)}")
    return sprintf(fmt, args[1:])


def _escaper_input(args: Sequence[object]) -> str:
    """What ``html``/``js``/``urlquery`` escape: a lone string as is, otherwise the ``print`` form."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if arg is None else arg for arg in args])


def _html(args: Sequence[object]) -> str:
    table = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
    return "".join(table.get(ch, ch) for ch in _escaper_input(args))


def _js_char(ch: str) -> str:
    table = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}
    if ch in table:
        return table[ch]
    if ch < " ":
        return f"\\u{ord(ch):04X}"
    if ord(ch) >= 0x80 and not ch.isprintable():
        return f"\\u{ord(ch):04X}"
    return ch


def _js(args: Sequence[object]) -> str:
    return "".join(_js_char(ch) for ch in _escaper_input(args))


def _urlquery(args: Sequence[object]) -> str:
    return urllib.parse.quote_plus(_escaper_input(args), safe="")


def _json(args: Sequence[object]) -> str:
    try:
        return encode(args[0])
    except ValueError:
        # Ollama ignores the marshal error and prints the empty result.
        return ""


def _typescript_type(args: Sequence[object]) -> str:
    prop = args[0]
    if not isinstance(prop, ToolProperty) or not prop.type:
        return "any"
    names = {
        "string": "string",
        "number": "number",
        "integer": "number",
        "boolean": "boolean",
        "array": "any[]",
        "object": "Record<string, any>",
        "null": "null",
    }
    return " | ".join(names.get(name, "any") for name in prop.type)


def _call(args: Sequence[object]) -> object:
    if args[0] is None:
        raise GoError("call of nil")
    raise GoError(f"non-function of type {go_type_name(args[0])}")


def _today() -> datetime.date:
    return datetime.datetime.now().date()


FUNCTIONS: Mapping[str, Function] = MappingProxyType(
    {
        "and": Function(lambda a: _first_deciding(a, want=False), 1, variadic=True),
        "or": Function(lambda a: _first_deciding(a, want=True), 1, variadic=True),
        "not": Function(lambda a: not is_true(a[0]), 1),
        "len": Function(_len, 1),
        "index": Function(_index, 1, variadic=True),
        "slice": Function(_slice, 1, variadic=True),
        "print": Function(sprint, 0, variadic=True),
        "printf": Function(_printf, 1, variadic=True),
        "println": Function(sprintln, 0, variadic=True),
        "eq": Function(_eq, 1, variadic=True),
        "ne": Function(lambda a: not _eq(a), 2),
        "lt": Function(_lt, 2),
        "le": Function(_le, 2),
        "gt": Function(_gt, 2),
        "ge": Function(_ge, 2),
        "html": Function(_html, 0, variadic=True),
        "js": Function(_js, 0, variadic=True),
        "urlquery": Function(_urlquery, 0, variadic=True),
        "call": Function(_call, 1, variadic=True),
        "json": Function(_json, 1),
        "currentDate": Function(lambda a: _today().isoformat(), 0, variadic=True),
        "yesterdayDate": Function(lambda a: (_today() - datetime.timedelta(days=1)).isoformat(), 0, variadic=True),
        "toTypeScriptType": Function(_typescript_type, 1),
    }
)
