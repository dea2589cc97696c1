"""Go's ``fmt`` printing for template values: ``%v`` and the ``print``/``printf``/``println`` builtins.

Supported verbs: ``%v %s %q %d %t %f %F %e %E %g %G %x %X %o %O %b %c %U %%`` with the flags ``- + # 0``
and space, a width and a precision. Containers print element by element (``[a b]``, ``map[k:v]`` with sorted
keys, ``{f1 f2}`` for structs); values with ``go_string()`` print as that string. Mismatches print the way Go
reports them: ``%!d(string=hi)``, ``%!s(MISSING)``, ``%!(EXTRA int=1)``. Not supported: ``%[n]`` argument
indexes and ``*`` widths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.gocompat.floats import format_float
from server.gocompat.strconv import quote, quote_rune

from .values import GoStringer, GoStruct, go_type_name, is_sequence, sorted_keys

__all__ = ["format_value", "sprint", "sprintf", "sprintln"]

_STRING_VERBS = frozenset("vsqxX")


@dataclass(frozen=True)
class _Spec:
    verb: str = "v"
    minus: bool = False
    plus: bool = False
    sharp: bool = False
    space: bool = False
    zero: bool = False
    width: int | None = None
    precision: int | None = None


_PLAIN = _Spec()


def _pad(text: str, spec: _Spec, numeric: bool = False) -> str:
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    if spec.zero and numeric:
        sign = text[0] if text[:1] in ("+", "-", " ") else ""
        return sign + "0" * fill + text[len(sign) :]
    return " " * fill + text


def _bad_verb(value: object, spec: _Spec) -> str:
    if value is None:
        return f"%!{spec.verb}(<nil>)"
    return f"%!{spec.verb}({go_type_name(value)}={_format(value, _PLAIN)})"


def _sign(negative: bool, spec: _Spec) -> str:
    if negative:
        return "-"
    return "+" if spec.plus else (" " if spec.space else "")


def _format_int(value: int, spec: _Spec) -> str:
    verb = spec.verb
    if verb == "c":
        return _pad(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd", spec)
    if verb == "q":
        return _pad(quote_rune(value), spec)
    if verb == "U":
        return _pad(f"U+{value:04X}", spec)
    bases = {"v": ("d", ""), "d": ("d", ""), "x": ("x", "0x"), "X": ("X", "0X"), "o": ("o", "0"), "b": ("b", "0b")}
    if verb == "O":
        digits, prefix = format(abs(value), "o"), "0o"
    elif verb in bases:
        code, alternate = bases[verb]
        digits, prefix = format(abs(value), code), (alternate if spec.sharp else "")
    else:
        return _bad_verb(value, spec)
    if spec.precision is not None:
        digits = digits.rjust(spec.precision, "0")
    return _pad(_sign(value < 0, spec) + prefix + digits, spec, numeric=spec.precision is None)


def _format_float(value: float, spec: _Spec) -> str:
    verb = spec.verb
    if verb not in "veEfFgG":
        return _bad_verb(value, spec)
    code = {"v": "g", "F": "f"}.get(verb, verb)
    precision = spec.precision if spec.precision is not None else (6 if code in "eEf" else -1)
    text = format_float(value, code, precision)
    if not text.startswith("-"):
        text = _sign(False, spec) + text
    return _pad(text, spec, numeric=text[-1:].isdigit())


def _format_string(value: str, spec: _Spec) -> str:
    verb = spec.verb
    if spec.precision is not None:
        value = value[: spec.precision]
    if verb in ("v", "s"):
        return _pad(value, spec)
    if verb == "q":
        if spec.sharp and "`" not in value and all(ch == "\t" or ch.isprintable() for ch in value):
            return _pad(f"`{value}`", spec)
        return _pad(quote(value), spec)
    if verb in ("x", "X"):
        text = value.encode("utf-8", "surrogatepass").hex()
        return _pad(text.upper() if verb == "X" else text, spec)
    return _bad_verb(value, spec)


def _format(value: object, spec: _Spec) -> str:
    verb = spec.verb
    if value is None:
        return _pad("<nil>", spec) if verb == "v" else _bad_verb(value, spec)
    if isinstance(value, GoStringer) and verb in _STRING_VERBS:
        return _format_string(value.go_string(), spec)
    if isinstance(value, bool):
        return _pad("true" if value else "false", spec) if verb in ("v", "t") else _bad_verb(value, spec)
    if isinstance(value, int):
        return _format_int(value, spec)
    if isinstance(value, float):
        return _format_float(value, spec)
    if isinstance(value, str):
        return _format_string(value, spec)
    if isinstance(value, bytes):
        if verb in ("s", "q", "x", "X"):
            return _format_string(value.decode("utf-8", "replace"), spec)
        return "[" + " ".join(_format_int(b, spec) for b in value) + "]"
    if isinstance(value, Mapping):
        mapping: Mapping[Any, object] = value
        items = (f"{_format(key, spec)}:{_format(mapping[key], spec)}" for key in sorted_keys(mapping))
        return "map[" + " ".join(items) + "]"
    if is_sequence(value):
        sequence: Sequence[object] = value  # type: ignore[assignment]
        return "[" + " ".join(_format(item, spec) for item in sequence) + "]"
    if isinstance(value, GoStruct):
        return "{" + " ".join(_format(item, spec) for item in value.go_values()) + "}"
    return _pad(str(value), spec)


def format_value(value: object) -> str:
    """``fmt.Sprint(value)``: the ``%v`` form."""
    return _format(value, _PLAIN)


def sprint(args: Sequence[object]) -> str:
    """``fmt.Sprint``: operands in ``%v`` form, with a space between two operands when neither is a string."""
    parts: list[str] = []
    previous_string = False
    for index, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if index and not is_string and not previous_string:
            parts.append(" ")
        parts.append(format_value(arg))
        previous_string = is_string
    return "".join(parts)


def sprintln(args: Sequence[object]) -> str:
    """``fmt.Sprintln``: operands in ``%v`` form separated by spaces, then a newline."""
    return " ".join(format_value(arg) for arg in args) + "\n"


def _read_number(fmt: str, i: int) -> tuple[int | None, int]:
    start = i
    while i < len(fmt) and fmt[i].isdigit():
        i += 1
    return (int(fmt[start:i]) if i > start else None), i


def sprintf(fmt: str, args: Sequence[object]) -> str:
    """``fmt.Sprintf`` for the verbs listed in the module docstring."""
    out: list[str] = []
    arg_index = 0
    i = 0
    while i < len(fmt):
        percent = fmt.find("%", i)
        if percent < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:percent])
        i = percent + 1
        flags = {"-": False, "+": False, "#": False, " ": False, "0": False}
        while i < len(fmt) and fmt[i] in flags:
            flags[fmt[i]] = True
            i += 1
        width, i = _read_number(fmt, i)
        precision = None
        if i < len(fmt) and fmt[i] == ".":
            precision, i = _read_number(fmt, i + 1)
            precision = precision or 0
        if i >= len(fmt):
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if arg_index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        spec = _Spec(verb, flags["-"], flags["+"], flags["#"], flags[" "], flags["0"], width, precision)
        out.append(_format(args[arg_index], spec))
        arg_index += 1
    if arg_index < len(args):
        extra = ", ".join(
            "<nil>" if arg is None else f"{go_type_name(arg)}={format_value(arg)}" for arg in args[arg_index:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
