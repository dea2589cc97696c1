"""The one table of Ollama options (request ``options`` and Modelfile ``PARAMETER`` names).

Every option has a name, a kind (int, float, bool, or a list of strings for ``stop``), a default and a flag that
says whether it is load-time (baked into the loaded model: changing it means a reload) or per-request (sampling).

Where the project's seed table and Ollama's current code disagree, the seed wins:

* ``tfs_z``, ``typical_p``, ``mirostat``, ``mirostat_tau``, ``mirostat_eta``, ``penalize_newline`` and ``numa``
  are accepted and stored (current Ollama rejects or drops some of them);
* ``seed`` defaults to 0, meaning "random"; ``repeat_penalty`` to 1.1; ``num_ctx`` to 2048.

The other names Ollama still accepts but drops with a warning (``low_vram``, ``f16_kv``, ``logits_all``,
``vocab_only``, ``use_mlock``) are dropped here too, and the warning text goes back to the caller.

Entry points, by source of the values:

* Modelfile text: :func:`parse_parameter` (one value) and :func:`parameters_from_pairs` (a whole Modelfile);
* JSON request ``options``: :func:`options_from_request`;
* combining layers: :func:`merge` (defaults < Modelfile < request), then :func:`split_load_time`;
* ``/api/show`` ``parameters``: :func:`format_parameter_lines`.

All errors are :class:`~server.errors.InvalidOption` carrying Ollama's message text.
"""

from __future__ import annotations

import decimal
import enum
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from server.errors import InvalidOption
from server.gocompat.strconv import quote

__all__ = [
    "DEFAULTS",
    "DEPRECATED",
    "OptionKind",
    "OptionSpec",
    "all_specs",
    "format_go_float",
    "format_parameter_lines",
    "is_deprecated",
    "lookup",
    "merge",
    "options_from_request",
    "parameters_from_pairs",
    "parse_parameter",
    "split_load_time",
]


class OptionKind(enum.Enum):
    """The value type of an option."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING_LIST = "string list"


@dataclass(frozen=True)
class OptionSpec:
    """One option: its name, kind, default and whether it is fixed when the model loads.

    ``default`` is ``None`` only where "unset" is itself meaningful (``use_mmap``: let llama.cpp decide).
    The default of a ``STRING_LIST`` option is a tuple so that the spec stays immutable; :func:`DEFAULTS`
    hands out lists.
    """

    name: str
    kind: OptionKind
    default: int | float | bool | tuple[str, ...] | None
    load_time: bool
    doc: str


_I, _F, _B, _S = OptionKind.INT, OptionKind.FLOAT, OptionKind.BOOL, OptionKind.STRING_LIST

_TABLE: tuple[OptionSpec, ...] = (
    # Load-time: a change forces the runner to reload the model.
    OptionSpec("num_ctx", _I, 2048, True, "context window in tokens"),
    OptionSpec("num_batch", _I, 512, True, "prompt-processing batch size"),
    OptionSpec("num_gpu", _I, -1, True, "layers to offload to the GPU; -1 = auto, 0 = CPU only"),
    OptionSpec("main_gpu", _I, 0, True, "GPU that holds small tensors and scratch buffers"),
    OptionSpec("use_mmap", _B, None, True, "memory-map the model file; unset = auto"),
    OptionSpec("num_thread", _I, 0, True, "CPU threads; 0 = auto"),
    OptionSpec("numa", _B, False, True, "NUMA optimisations"),
    OptionSpec("draft_num_predict", _I, 0, True, "speculative draft tokens per step (0 = no draft model)"),
    # Per-request: sampling and generation limits.
    OptionSpec("num_keep", _I, 4, False, "tokens of the prompt kept when the context shifts"),
    OptionSpec("seed", _I, 0, False, "random seed; 0 = random"),
    OptionSpec("num_predict", _I, -1, False, "tokens to generate; -1 = unlimited, -2 = fill the context"),
    OptionSpec("top_k", _I, 40, False, "top-k sampling; 0 = disabled"),
    OptionSpec("top_p", _F, 0.9, False, "nucleus sampling threshold"),
    OptionSpec("min_p", _F, 0.0, False, "minimum probability relative to the top token"),
    OptionSpec("typical_p", _F, 1.0, False, "locally typical sampling; 1.0 = disabled"),
    OptionSpec("tfs_z", _F, 1.0, False, "tail-free sampling; 1.0 = disabled"),
    OptionSpec("repeat_last_n", _I, 64, False, "repeat-penalty window; 0 = disabled, -1 = num_ctx"),
    OptionSpec("temperature", _F, 0.8, False, "sampling temperature; 0 = greedy"),
    OptionSpec("repeat_penalty", _F, 1.1, False, "penalty for repeated tokens"),
    OptionSpec("presence_penalty", _F, 0.0, False, "penalty for tokens already present"),
    OptionSpec("frequency_penalty", _F, 0.0, False, "penalty proportional to token frequency"),
    OptionSpec("mirostat", _I, 0, False, "Mirostat mode: 0 = off, 1, 2"),
    OptionSpec("mirostat_tau", _F, 5.0, False, "Mirostat target entropy"),
    OptionSpec("mirostat_eta", _F, 0.1, False, "Mirostat learning rate"),
    OptionSpec("penalize_newline", _B, True, False, "include newlines in the repeat penalty"),
    OptionSpec("stop", _S, (), False, "stop sequences; repeated PARAMETER stop lines accumulate"),
)

_SPECS: Mapping[str, OptionSpec] = MappingProxyType({spec.name: spec for spec in _TABLE})

DEPRECATED: frozenset[str] = frozenset({"low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock"})
"""Names accepted with a warning and dropped, whatever their value (Ollama does not even parse it)."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# Go's strconv.ParseInt(s, 10, 64): an optional sign and ASCII digits, nothing else (no spaces, no underscores).
_GO_INT = re.compile(r"[+-]?[0-9]+")
# The decimal part of Go's ParseFloat syntax, where "_" may separate two digits. Hex floats and Inf/NaN spellings
# are refused on purpose: a non-finite temperature is never what a Modelfile means, and Ollama could not store it
# as JSON anyway.
_GO_DIGITS = r"[0-9](?:_?[0-9])*"
_GO_FLOAT = re.compile(rf"[+-]?(?:{_GO_DIGITS}(?:\.(?:{_GO_DIGITS})?)?|\.{_GO_DIGITS})(?:[eE][+-]?{_GO_DIGITS})?")
# Go's strconv.ParseBool accepts exactly these spellings.
_GO_BOOLS: Mapping[str, bool] = MappingProxyType(
    {
        **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
        **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
    }
)


def lookup(name: str) -> OptionSpec | None:
    """The spec of option ``name`` (case-sensitive), or ``None`` when there is no such option.

    Deprecated names have no spec: see :func:`is_deprecated`.
    """
    return _SPECS.get(name)


def all_specs() -> tuple[OptionSpec, ...]:
    """Every option spec, load-time ones first, in a stable order."""
    return _TABLE


def is_deprecated(name: str) -> bool:
    """Whether ``name`` is accepted with a warning and then dropped."""
    return name in DEPRECATED


def DEFAULTS() -> dict[str, Any]:  # upper case: it stands in for a constant table of defaults
    """A fresh dict with every option at its default (``stop`` as an empty list, ``use_mmap`` as ``None``).

    The caller owns the result and may mutate it.
    """
    return {spec.name: _fresh(spec.default) for spec in _TABLE}


def _fresh(value: Any) -> Any:
    # Lists are copied so that no caller can alias another layer's (or the table's) stop list.
    if isinstance(value, tuple | list):
        return list(value)
    return value


# --- Modelfile text values ---------------------------------------------------------------------------------


def parse_parameter(name: str, value: str) -> int | float | bool | list[str] | None:
    """Convert one Modelfile ``PARAMETER name value`` to its typed value.

    Returns an ``int``, ``float`` or ``bool`` by the option's kind; for ``stop`` a one-element list (a Modelfile
    line holds one stop sequence; :func:`parameters_from_pairs` accumulates them). Returns ``None`` for a
    deprecated name: the parameter is accepted and dropped, its value unchecked.

    Raises :class:`InvalidOption` with Ollama's texts: ``unknown parameter 'x'``, ``invalid int value [v]``,
    ``invalid float value [v]``, ``invalid bool value [v]``. Numbers follow Go's syntax (ASCII digits, no
    surrounding spaces; floats may put ``_`` between digits); ints must fit in 64 bits; floats must be finite
    and fit in a float32, as Ollama parses them with ``ParseFloat(v, 32)``. The float is kept at full precision.
    """
    spec = _SPECS.get(name)
    if spec is None:
        if name in DEPRECATED:
            return None
        raise InvalidOption(f"unknown parameter '{name}'")
    if spec.kind is OptionKind.STRING_LIST:
        return [value]
    if spec.kind is OptionKind.INT:
        if _GO_INT.fullmatch(value) is None or not _INT64_MIN <= int(value) <= _INT64_MAX:
            raise InvalidOption(f"invalid int value [{value}]")
        return int(value)
    if spec.kind is OptionKind.FLOAT:
        if _GO_FLOAT.fullmatch(value) is None or not _fits_float32(float(value.replace("_", ""))):
            raise InvalidOption(f"invalid float value [{value}]")
        return float(value.replace("_", ""))
    if value not in _GO_BOOLS:
        raise InvalidOption(f"invalid bool value [{value}]")
    return _GO_BOOLS[value]


def _fits_float32(number: float) -> bool:
    if not math.isfinite(number):
        return False
    try:
        struct.pack("<f", number)
    except OverflowError:
        return False
    return True


def parameters_from_pairs(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, Any], list[str]]:
    """Type a sequence of ``(name, text value)`` pairs, as a Modelfile's PARAMETER lines in file order.

    Returns ``(parameters, warnings)``. Repeated ``stop`` values accumulate into one list in order; for any
    other repeated name the last value wins, as in Ollama. Deprecated names are dropped and produce one
    ``parameter X is deprecated`` warning each (once per name). Only names that appear are in the result.
    Raises :class:`InvalidOption` on the first bad pair (see :func:`parse_parameter`).
    """
    params: dict[str, Any] = {}
    warnings: list[str] = []
    for name, text in pairs:
        value = parse_parameter(name, text)
        if value is None:
            warning = f"parameter {name} is deprecated"
            if warning not in warnings:
                warnings.append(warning)
        elif isinstance(value, list):
            params.setdefault(name, []).extend(value)
        else:
            params[name] = value
    return params, warnings


# --- JSON request options -----------------------------------------------------------------------------------


def options_from_request(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Decode the ``options`` object of a JSON request, following Ollama's ``Options.FromMap``.

    Returns ``(options, ignored)``: the typed known options, and the names that were ignored (unknown or
    deprecated) so that the caller can log them. ``null`` values are skipped. Int options accept any JSON
    number and truncate it toward zero (bools are refused); float options need a number; bool options need a
    bool; ``stop`` needs an array of strings.

    Raises :class:`InvalidOption` with Ollama's texts: ``option "x" must be of type integer``,
    ``... of type float32``, ``... of type boolean``, ``... of type array``, ``... of an array of strings``.
    Non-finite numbers and ints beyond 64 bits are refused with the same texts.
    """
    options: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in raw.items():
        spec = _SPECS.get(key)
        if spec is None:
            ignored.append(key)
            continue
        if value is None:
            continue
        options[key] = _decode_json_value(spec, value)
    return options, ignored


def _decode_json_value(spec: OptionSpec, value: Any) -> Any:
    key = spec.name
    if spec.kind is OptionKind.INT:
        # bool is an int subclass in Python; JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidOption(f'option "{key}" must be of type integer')
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidOption(f'option "{key}" must be of type integer')
        number = int(value)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise InvalidOption(f'option "{key}" must be of type integer')
        return number
    if spec.kind is OptionKind.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidOption(f'option "{key}" must be of type float32')
        try:
            number_f = float(value)
        except OverflowError:  # an int too large for a float
            raise InvalidOption(f'option "{key}" must be of type float32') from None
        if not math.isfinite(number_f):
            raise InvalidOption(f'option "{key}" must be of type float32')
        return number_f
    if spec.kind is OptionKind.BOOL:
        if not isinstance(value, bool):
            raise InvalidOption(f'option "{key}" must be of type boolean')
        return value
    if not isinstance(value, list):
        raise InvalidOption(f'option "{key}" must be of type array')
    if not all(isinstance(item, str) for item in value):
        raise InvalidOption(f'option "{key}" must be of an array of strings')
    return list(value)


# --- combining layers ----------------------------------------------------------------------------------------


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Every option, starting from :func:`DEFAULTS`, overridden by each layer in turn (later wins).

    Typical call: ``merge(modelfile_parameters, request_options)``. A ``None`` value in a layer means "not
    set" and leaves the value below it in place. A list (``stop``) replaces the one below, it does not add to
    it. Layers must be typed already (from :func:`parameters_from_pairs` or :func:`options_from_request`);
    an unknown name raises :class:`InvalidOption`. The result shares no list with any layer.
    """
    merged = DEFAULTS()
    for layer in layers:
        for key, value in layer.items():
            if key not in _SPECS:
                raise InvalidOption(f"unknown parameter '{key}'")
            if value is not None:
                merged[key] = _fresh(value)
    return merged


def split_load_time(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split options into ``(load_time, per_request)`` by the table's flag. Unknown names raise InvalidOption."""
    load_time: dict[str, Any] = {}
    per_request: dict[str, Any] = {}
    for key, value in options.items():
        spec = _SPECS.get(key)
        if spec is None:
            raise InvalidOption(f"unknown parameter '{key}'")
        (load_time if spec.load_time else per_request)[key] = _fresh(value)
    return load_time, per_request


# --- /api/show formatting -------------------------------------------------------------------------------------

_PARAMETER_NAME_WIDTH = 30


def format_parameter_lines(params: Mapping[str, Any]) -> str:
    """The ``parameters`` text of ``/api/show``: one ``name value`` line per value, joined by newlines.

    Like Ollama's ``%-30s %#v``: the name left-justified to 30 columns, a space, then the value as Go's
    ``%#v`` writes it (strings double-quoted with Go escapes, bools ``true``/``false``, floats in Go's
    shortest ``%v`` form such as ``0.7``, ``1``, ``1e-05``). A list repeats the name once per item. Ints are
    written plainly (Ollama round-trips them through JSON floats, so it would print 1000000 as ``1e+06``;
    plain digits are what was meant). ``None`` values (unset) are left out. Unlike Ollama's map iteration,
    the order is stable: by name, list items in their order. No trailing newline.
    """
    lines: list[str] = []
    for name in sorted(params):
        value = params[name]
        items: Sequence[Any] = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if item is None:
                continue
            lines.append(f"{name:<{_PARAMETER_NAME_WIDTH}} {_go_sharp_v(item)}")
    return "\n".join(lines)


def _go_sharp_v(value: Any) -> str:
    """Go's ``%#v`` of a decoded JSON value (``/api/show`` takes any JSON as an option's value): objects and
    nested lists as Go writes ``map[string]interface {}`` (keys sorted) and ``[]interface {}``."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, dict):
        entries = ", ".join(f"{quote(str(key))}:{_go_sharp_v(value[key])}" for key in sorted(value))
        return f"map[string]interface {{}}{{{entries}}}"
    if isinstance(value, list | tuple):
        return f"[]interface {{}}{{{', '.join(_go_sharp_v(item) for item in value)}}}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_go_float(value)
    if isinstance(value, str):
        return quote(value)
    raise TypeError(f"cannot format a parameter value of type {type(value).__name__}")


def format_go_float(number: float) -> str:
    """``number`` as Go's ``fmt`` prints a float64 with ``%v`` (and ``%#v``): shortest digits, ``%g`` layout.

    The exponent form is used when the decimal exponent is below -4 or at least 6 (``1e-05``, ``1e+06``,
    ``1.5e+07``), otherwise plain digits without a trailing ``.0`` (``0.7``, ``1``, ``123456.5``). Non-finite
    values print as ``+Inf``, ``-Inf``, ``NaN``.
    """
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    negative = math.copysign(1.0, number) < 0
    sign = "-" if negative else ""
    if number == 0:
        return sign + "0"
    # repr() gives the shortest digits that round-trip, the same digits Go's shortest formatting picks.
    _, digit_tuple, exponent = decimal.Decimal(repr(abs(number))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    point = len(digits) + exponent  # value = 0.<digits> * 10**point
    decimal_exponent = point - 1
    if decimal_exponent < -4 or decimal_exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp_sign = "-" if decimal_exponent < 0 else "+"
        return f"{sign}{mantissa}e{exp_sign}{abs(decimal_exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"
