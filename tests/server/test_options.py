"""The option table, PARAMETER text typing, request-options decoding, layering and /api/show formatting."""

from __future__ import annotations

from typing import Any

import pytest

from server import options
from server.errors import InvalidOption
from server.options import OptionKind

# name, kind, default, load-time: the seed's table, then the reference's extras.
EXPECTED_TABLE = [
    ("temperature", OptionKind.FLOAT, 0.8, False),
    ("top_p", OptionKind.FLOAT, 0.9, False),
    ("top_k", OptionKind.INT, 40, False),
    ("num_predict", OptionKind.INT, -1, False),
    ("repeat_penalty", OptionKind.FLOAT, 1.1, False),
    ("repeat_last_n", OptionKind.INT, 64, False),
    ("num_ctx", OptionKind.INT, 2048, True),
    ("num_gpu", OptionKind.INT, -1, True),
    ("num_thread", OptionKind.INT, 0, True),
    ("seed", OptionKind.INT, 0, False),
    ("stop", OptionKind.STRING_LIST, (), False),
    ("tfs_z", OptionKind.FLOAT, 1.0, False),
    ("typical_p", OptionKind.FLOAT, 1.0, False),
    ("mirostat", OptionKind.INT, 0, False),
    ("mirostat_tau", OptionKind.FLOAT, 5.0, False),
    ("mirostat_eta", OptionKind.FLOAT, 0.1, False),
    ("penalize_newline", OptionKind.BOOL, True, False),
    ("numa", OptionKind.BOOL, False, True),
    ("num_batch", OptionKind.INT, 512, True),
    ("main_gpu", OptionKind.INT, 0, True),
    ("use_mmap", OptionKind.BOOL, None, True),
    ("draft_num_predict", OptionKind.INT, 0, True),
    ("num_keep", OptionKind.INT, 4, False),
    ("min_p", OptionKind.FLOAT, 0.0, False),
    ("presence_penalty", OptionKind.FLOAT, 0.0, False),
    ("frequency_penalty", OptionKind.FLOAT, 0.0, False),
]


@pytest.mark.parametrize(
    ("name", "kind", "default", "load_time"), EXPECTED_TABLE, ids=[row[0] for row in EXPECTED_TABLE]
)
def test_table_entry(name: str, kind: OptionKind, default: Any, load_time: bool) -> None:
    spec = options.lookup(name)
    assert spec is not None
    assert (spec.kind, spec.default, spec.load_time) == (kind, default, load_time)
    assert spec.doc


def test_table_has_nothing_else() -> None:
    assert {spec.name for spec in options.all_specs()} == {row[0] for row in EXPECTED_TABLE}


@pytest.mark.parametrize("name", ["Temperature", "num_gqa", "low_vram", "", "rope_frequency_base"])
def test_lookup_unknown_or_deprecated_is_none(name: str) -> None:
    assert options.lookup(name) is None


def test_defaults_is_fresh_each_call() -> None:
    first = options.DEFAULTS()
    first["stop"].append("x")
    first["temperature"] = 0.0
    second = options.DEFAULTS()
    assert second["stop"] == []
    assert second["temperature"] == 0.8
    assert second["use_mmap"] is None
    assert set(second) == {row[0] for row in EXPECTED_TABLE}


# --- parse_parameter ---------------------------------------------------------------------------------------

PARSE_OK = [
    ("num_ctx", "4096", 4096),
    ("num_ctx", "+5", 5),
    ("num_gpu", "-1", -1),
    ("seed", "9223372036854775807", 2**63 - 1),
    ("seed", "-9223372036854775808", -(2**63)),
    ("num_predict", "007", 7),
    ("temperature", "0.7", 0.7),
    ("temperature", "1", 1.0),
    ("temperature", "1.", 1.0),
    ("temperature", ".5", 0.5),
    ("temperature", "-0", -0.0),
    ("min_p", "1e-5", 1e-5),
    ("min_p", "1E+2", 100.0),
    ("top_p", "1_0.2_5", 10.25),
    ("repeat_penalty", "1e-50", 1e-50),
    ("tfs_z", "0.95", 0.95),
    ("typical_p", "1.0", 1.0),
    ("mirostat", "2", 2),
    ("mirostat_tau", "5", 5.0),
    ("mirostat_eta", "0.1", 0.1),
    ("penalize_newline", "false", False),
    ("numa", "true", True),
    ("use_mmap", "0", False),
    ("stop", "<|im_end|>", ["<|im_end|>"]),
    ("stop", "", [""]),
    ("stop", 'a "quoted" #value', ['a "quoted" #value']),
]


@pytest.mark.parametrize(("name", "text", "expected"), PARSE_OK, ids=[f"{n}={t!r}" for n, t, _ in PARSE_OK])
def test_parse_parameter_types_the_value(name: str, text: str, expected: Any) -> None:
    value = options.parse_parameter(name, text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_parse_bool_true_spellings(text: str) -> None:
    assert options.parse_parameter("numa", text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_parse_bool_false_spellings(text: str) -> None:
    assert options.parse_parameter("penalize_newline", text) is False


PARSE_ERRORS = [
    ("num_ctx", "1.5", "invalid int value [1.5]"),
    ("num_ctx", "abc", "invalid int value [abc]"),
    ("num_ctx", "", "invalid int value []"),
    ("num_ctx", " 1", "invalid int value [ 1]"),
    ("num_ctx", "1_000", "invalid int value [1_000]"),
    ("num_ctx", "1e3", "invalid int value [1e3]"),
    ("num_ctx", "٣", "invalid int value [٣]"),
    ("seed", "9223372036854775808", "invalid int value [9223372036854775808]"),
    ("mirostat", "true", "invalid int value [true]"),
    ("temperature", "abc", "invalid float value [abc]"),
    ("temperature", "", "invalid float value []"),
    ("temperature", "0.7 ", "invalid float value [0.7 ]"),
    ("temperature", "inf", "invalid float value [inf]"),
    ("temperature", "NaN", "invalid float value [NaN]"),
    ("temperature", "0x1p-2", "invalid float value [0x1p-2]"),
    ("temperature", "1e39", "invalid float value [1e39]"),
    ("temperature", "1__0", "invalid float value [1__0]"),
    ("temperature", "_1", "invalid float value [_1]"),
    ("temperature", "1,5", "invalid float value [1,5]"),
    ("tfs_z", "a b", "invalid float value [a b]"),
    ("numa", "yes", "invalid bool value [yes]"),
    ("numa", "tRUE", "invalid bool value [tRUE]"),
    ("penalize_newline", "2", "invalid bool value [2]"),
    ("use_mmap", "", "invalid bool value []"),
    ("foo", "1", "unknown parameter 'foo'"),
    ("Temperature", "1", "unknown parameter 'Temperature'"),
    ("num_gqa", "1", "unknown parameter 'num_gqa'"),
    ("", "1", "unknown parameter ''"),
]


@pytest.mark.parametrize(("name", "text", "message"), PARSE_ERRORS, ids=[f"{n}={t!r}" for n, t, _ in PARSE_ERRORS])
def test_parse_parameter_errors(name: str, text: str, message: str) -> None:
    with pytest.raises(InvalidOption) as caught:
        options.parse_parameter(name, text)
    assert caught.value.message == message
    assert caught.value.status_code == 400


@pytest.mark.parametrize("name", sorted(options.DEPRECATED))
def test_deprecated_parameter_is_dropped_unchecked(name: str) -> None:
    assert options.is_deprecated(name)
    assert options.parse_parameter(name, "not even a bool") is None


# --- parameters_from_pairs -----------------------------------------------------------------------------------


def test_pairs_accumulate_stop_and_last_wins() -> None:
    params, warnings = options.parameters_from_pairs(
        [
            ("stop", "<|im_start|>"),
            ("temperature", "0.1"),
            ("stop", "<|im_end|>"),
            ("temperature", "0.7"),
            ("num_ctx", "8192"),
        ]
    )
    assert params == {"stop": ["<|im_start|>", "<|im_end|>"], "temperature": 0.7, "num_ctx": 8192}
    assert warnings == []


def test_pairs_warn_once_per_deprecated_name_and_drop_it() -> None:
    params, warnings = options.parameters_from_pairs(
        [("low_vram", "true"), ("f16_kv", "x"), ("low_vram", "false"), ("mirostat", "1"), ("penalize_newline", "f")]
    )
    assert params == {"mirostat": 1, "penalize_newline": False}
    assert warnings == ["parameter low_vram is deprecated", "parameter f16_kv is deprecated"]


def test_pairs_empty() -> None:
    assert options.parameters_from_pairs([]) == ({}, [])


def test_pairs_raise_on_first_bad_pair() -> None:
    with pytest.raises(InvalidOption, match=r"^invalid int value \[x\]$"):
        options.parameters_from_pairs([("stop", "a"), ("top_k", "x"), ("foo", "1")])


# --- options_from_request --------------------------------------------------------------------------------------

REQUEST_OK = [
    ("int", {"num_ctx": 4096}, {"num_ctx": 4096}),
    ("int-from-float-truncates", {"num_predict": 2.9}, {"num_predict": 2}),
    ("int-negative-float-truncates-to-zero", {"seed": -2.9}, {"seed": -2}),
    ("pointer-int", {"main_gpu": 1.0}, {"main_gpu": 1}),
    ("float-from-int", {"temperature": 1}, {"temperature": 1.0}),
    ("float", {"top_p": 0.5}, {"top_p": 0.5}),
    ("bool", {"numa": True, "use_mmap": False}, {"numa": True, "use_mmap": False}),
    ("stop", {"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
    ("stop-empty", {"stop": []}, {"stop": []}),
    ("null-skipped", {"temperature": None, "stop": None, "top_k": 3}, {"top_k": 3}),
    (
        "seed-only-names",
        {"tfs_z": 0.5, "mirostat": 2, "penalize_newline": False},
        {"tfs_z": 0.5, "mirostat": 2, "penalize_newline": False},
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [row[1:] for row in REQUEST_OK], ids=[row[0] for row in REQUEST_OK])
def test_request_options_decode(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    decoded, ignored = options.options_from_request(raw)
    assert decoded == expected
    assert {k: type(v) for k, v in decoded.items()} == {k: type(v) for k, v in expected.items()}
    assert ignored == []


def test_request_options_ignore_unknown_and_deprecated_names() -> None:
    decoded, ignored = options.options_from_request({"foo": "bar", "low_vram": True, "Temperature": "x", "top_k": 1})
    assert decoded == {"top_k": 1}
    assert ignored == ["foo", "low_vram", "Temperature"]


def test_request_stop_list_is_copied() -> None:
    raw = {"stop": ["a"]}
    decoded, _ = options.options_from_request(raw)
    decoded["stop"].append("b")
    assert raw == {"stop": ["a"]}


REQUEST_ERRORS = [
    ("int-from-string", {"num_ctx": "4096"}, 'option "num_ctx" must be of type integer'),
    ("int-from-bool", {"top_k": True}, 'option "top_k" must be of type integer'),
    ("int-from-list", {"seed": [1]}, 'option "seed" must be of type integer'),
    ("int-from-inf", {"num_predict": float("inf")}, 'option "num_predict" must be of type integer'),
    ("int-from-nan", {"num_predict": float("nan")}, 'option "num_predict" must be of type integer'),
    ("int-too-big", {"seed": 2**64}, 'option "seed" must be of type integer'),
    ("pointer-int-from-string", {"main_gpu": "0"}, 'option "main_gpu" must be of type integer'),
    ("float-from-string", {"temperature": "0.7"}, 'option "temperature" must be of type float32'),
    ("float-from-bool", {"top_p": False}, 'option "top_p" must be of type float32'),
    ("float-from-nan", {"min_p": float("nan")}, 'option "min_p" must be of type float32'),
    ("float-from-huge-int", {"min_p": 10**400}, 'option "min_p" must be of type float32'),
    ("bool-from-int", {"numa": 1}, 'option "numa" must be of type boolean'),
    ("bool-from-string", {"use_mmap": "true"}, 'option "use_mmap" must be of type boolean'),
    ("stop-from-string", {"stop": "</s>"}, 'option "stop" must be of type array'),
    ("stop-from-object", {"stop": {"a": 1}}, 'option "stop" must be of type array'),
    ("stop-with-number", {"stop": ["a", 1]}, 'option "stop" must be of an array of strings'),
    ("stop-with-null", {"stop": [None]}, 'option "stop" must be of an array of strings'),
]


@pytest.mark.parametrize(
    ("raw", "message"), [row[1:] for row in REQUEST_ERRORS], ids=[row[0] for row in REQUEST_ERRORS]
)
def test_request_options_errors(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidOption) as caught:
        options.options_from_request(raw)
    assert caught.value.message == message


# --- merge and split -------------------------------------------------------------------------------------------


def test_merge_precedence_defaults_modelfile_request() -> None:
    modelfile = {"temperature": 0.2, "stop": ["<|im_end|>"], "num_ctx": 8192}
    request = {"temperature": 0.9, "stop": ["###"]}
    merged = options.merge(modelfile, request)
    assert merged["temperature"] == 0.9
    assert merged["stop"] == ["###"]
    assert merged["num_ctx"] == 8192
    assert merged["top_k"] == 40
    assert set(merged) == {row[0] for row in EXPECTED_TABLE}


def test_merge_none_does_not_override() -> None:
    merged = options.merge({"use_mmap": False, "seed": 5}, {"use_mmap": None, "seed": None})
    assert merged["use_mmap"] is False
    assert merged["seed"] == 5


def test_merge_shares_no_list_with_layers() -> None:
    layer = {"stop": ["a"]}
    merged = options.merge(layer)
    merged["stop"].append("b")
    assert layer == {"stop": ["a"]}


def test_merge_without_layers_is_defaults() -> None:
    assert options.merge() == options.DEFAULTS()


def test_merge_rejects_unknown_names() -> None:
    with pytest.raises(InvalidOption, match=r"^unknown parameter 'num_gqa'$"):
        options.merge({"num_gqa": 8})


def test_split_load_time() -> None:
    load, per_request = options.split_load_time(options.DEFAULTS())
    assert set(load) == {
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "use_mmap",
        "num_thread",
        "numa",
        "draft_num_predict",
    }
    assert set(per_request) == {row[0] for row in EXPECTED_TABLE} - set(load)
    assert per_request["stop"] == []


def test_split_load_time_partial_and_unknown() -> None:
    assert options.split_load_time({"num_ctx": 1, "top_k": 2}) == ({"num_ctx": 1}, {"top_k": 2})
    with pytest.raises(InvalidOption, match="unknown parameter 'bogus'"):
        options.split_load_time({"bogus": 1})


# --- /api/show formatting --------------------------------------------------------------------------------------


def test_parameter_lines_layout() -> None:
    text = options.format_parameter_lines(
        {"temperature": 0.7, "stop": ["<|im_start|>", "<|im_end|>"], "num_ctx": 4096, "numa": False}
    )
    assert text == (
        "num_ctx                        4096\n"
        "numa                           false\n"
        'stop                           "<|im_start|>"\n'
        'stop                           "<|im_end|>"\n'
        "temperature                    0.7"
    )
    # Go's "%-30s %#v": the value starts in column 32.
    assert all(line[30] == " " and line[31] != " " for line in text.splitlines())


def test_parameter_lines_edge_cases() -> None:
    assert options.format_parameter_lines({}) == ""
    assert options.format_parameter_lines({"use_mmap": None, "stop": []}) == ""
    long_name = "a_name_that_is_longer_than_thirty_columns"
    assert options.format_parameter_lines({long_name: 1}) == f"{long_name} 1"
    assert options.format_parameter_lines({"stop": 'say "hi"\n'}) == 'stop                           "say \\"hi\\"\\n"'
    with pytest.raises(TypeError):
        options.format_parameter_lines({"x": object()})


def test_parameter_lines_write_any_json_value_as_go_does() -> None:
    """/api/show merges the request's options, whatever JSON they hold (found by schemathesis: a 500)."""
    text = options.format_parameter_lines({"x": {"b": [1, None], "a": {"c": "d"}}, "y": [[True], None]})
    assert text.splitlines() == [
        'x                              map[string]interface {}{"a":map[string]interface {}{"c":"d"}, '
        '"b":[]interface {}{1, interface {}(nil)}}',
        "y                              []interface {}{true}",
    ]


GO_FLOATS = [
    (0.7, "0.7"),
    (1.0, "1"),
    (5.0, "5"),
    (0.1, "0.1"),
    (-0.5, "-0.5"),
    (1e-05, "1e-05"),
    (0.0001, "0.0001"),
    (1.5e-07, "1.5e-07"),
    (100000.0, "100000"),
    (123456.5, "123456.5"),
    (1e6, "1e+06"),
    (1234567.0, "1.234567e+06"),
    (1e21, "1e+21"),
    (2.5e300, "2.5e+300"),
    (0.0, "0"),
    (-0.0, "-0"),
    (float("inf"), "+Inf"),
    (float("-inf"), "-Inf"),
    (float("nan"), "NaN"),
]


@pytest.mark.parametrize(("number", "expected"), GO_FLOATS, ids=[text for _, text in GO_FLOATS])
def test_go_float_format(number: float, expected: str) -> None:
    """Expected texts checked against Go 1.26's fmt.Sprintf("%#v", float64(x))."""
    assert options.format_go_float(number) == expected
