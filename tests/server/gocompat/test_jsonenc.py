"""Go ``encoding/json`` parity: escaping, float formatting, key order, the encoder's trailing newline."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.gocompat import jsonenc as gojson


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("plain", '"plain"'),
        ("<|im_start|>", '"\\u003c|im_start|\\u003e"'),
        ("a & b", '"a \\u0026 b"'),
        ("line\nnext\ttab\rcr", '"line\\nnext\\ttab\\rcr"'),
        ("\b\f", '"\\b\\f"'),
        ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
        ('quote " back \\', '"quote \\" back \\\\"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("héllo ✓ 日本", '"héllo ✓ 日本"'),
        ("emoji 🦙", '"emoji 🦙"'),
        ("\x7f", '"\x7f"'),
        ("/slash", '"/slash"'),
    ],
    ids=[
        "plain",
        "angle",
        "amp",
        "whitespace",
        "bf",
        "control",
        "quote-backslash",
        "u2028",
        "utf8",
        "emoji",
        "del",
        "slash",
    ],
)
def test_string_escaping(text: str, encoded: str) -> None:
    assert gojson.dumps(text) == encoded
    assert json.loads(encoded) == text


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (100.0, "100"),
        (-2.0, "-2"),
        (0.0, "0"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (0.6, "0.6"),
        (2.5, "2.5"),
        (1e-5, "0.00001"),
        (3e-5, "0.00003"),
        (1e-6, "0.000001"),
        (1.234e-6, "0.000001234"),
        (1e-7, "1e-7"),
        (9.99e-7, "9.99e-7"),
        (1.5e-10, "1.5e-10"),
        (1e-320, "1e-320"),
        (123456789.0, "123456789"),
        (9007199254740992.0, "9007199254740992"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
    ids=repr,
)
def test_float_formatting(number: float, text: str) -> None:
    assert gojson.go_float(number) == text
    assert gojson.dumps(number) == text


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")], ids=repr)
def test_non_finite_floats_are_refused(number: float) -> None:
    with pytest.raises(ValueError, match="unsupported value"):
        gojson.dumps({"x": number})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-7, "-7"),
        (2**63 - 1, "9223372036854775807"),
        ([], "[]"),
        ({}, "{}"),
        ((1, "a"), '[1,"a"]'),
        ([1, [2, [3]]], "[1,[2,[3]]]"),
        ({"a": {"b": [None, 1.5]}}, '{"a":{"b":[null,1.5]}}'),
    ],
    ids=repr,
)
def test_values_are_compact(value: Any, text: str) -> None:
    assert gojson.dumps(value) == text


def test_keys_keep_insertion_order_like_a_go_struct() -> None:
    value = {"schemaVersion": 2, "mediaType": "m", "config": {"z": 1, "a": 2}}
    assert gojson.dumps(value) == '{"schemaVersion":2,"mediaType":"m","config":{"z":1,"a":2}}'


def test_sort_keys_sorts_every_level_like_a_go_map() -> None:
    value = {"top_k": 40, "stop": ["b", "a"], "nested": {"y": 1, "X": 2, "é": 3, "b": 4}}
    assert gojson.dumps(value, sort_keys=True) == '{"nested":{"X":2,"b":4,"y":1,"é":3},"stop":["b","a"],"top_k":40}'


def test_keys_are_escaped_too() -> None:
    assert gojson.dumps({"<k>": 1}) == '{"\\u003ck\\u003e":1}'


def test_encode_is_the_encoder_output_with_a_newline() -> None:
    assert gojson.encode({"stop": ["<|im_end|>"], "temperature": 0.6}, sort_keys=True) == (
        b'{"stop":["\\u003c|im_end|\\u003e"],"temperature":0.6}\n'
    )


def test_utf8_is_written_as_utf8_bytes() -> None:
    assert gojson.encode("é") == '"é"\n'.encode()


@pytest.mark.parametrize("value", [b"bytes", object(), {1, 2}], ids=["bytes", "object", "set"])
def test_unsupported_types_raise_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match="unsupported type"):
        gojson.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, "x<y", None, True]},
        ["\u2028", 1e-9, 12345.678, {"k": -0.25}],
    ],
)
def test_output_parses_back_to_the_same_value(value: Any) -> None:
    assert json.loads(gojson.dumps(value)) == value
