"""Execution: fields, control structures, variables and scope, truthiness, printing, runtime errors."""

from __future__ import annotations

import pytest

from server.errors import TemplateError
from server.gotemplate import Message, Template

DATA = {
    "Name": "n",
    "L": [1, 2, 3, 4],
    "S": ["a", "b", "c"],
    "M": {"b": 2, "a": 1, "c": 3},
    "Nested": {"A": {"B": {"C": "deep"}}},
    "Empty": [],
    "EmptyMap": {},
    "Zero": 0,
    "Nil": None,
    "Msg": Message(role="user", content="hi", tool_call_id="call_1"),
}


def render(source: str, data: object = DATA) -> str:
    return Template.parse(source, append_response=False).execute(data)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("hello", "hello", id="text-only"),
        pytest.param("{{ .Name }}", "n", id="field"),
        pytest.param("{{ .Nested.A.B.C }}", "deep", id="field-chain"),
        pytest.param("{{ $.Name }}", "n", id="root-variable-field"),
        pytest.param("{{ (.Nested.A).B.C }}", "deep", id="chain-on-parenthesized"),
        pytest.param("{{ .Msg.Role }} {{ .Msg.ToolCallID }}", "user call_1", id="struct-go-names"),
        pytest.param('{{ "a" | printf "%s-%s" "b" }}', "b-a", id="pipeline-appends-final-arg"),
        pytest.param('{{ .S | len | printf "%d" }}', "3", id="multi-stage-pipeline"),
        pytest.param('{{ printf "%d" (len .S) }}', "3", id="parenthesized-argument"),
        pytest.param("{{ . }}", "map[Empty:[] EmptyMap:map[] L:[1 2 3 4] M:map[a:1 b:2 c:3] ", id="dot-map-prefix"),
    ],
)
def test_actions(source: str, expected: str) -> None:
    assert render(source).startswith(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("text", "text", id="string"),
        pytest.param(42, "42", id="int"),
        pytest.param(-0.5, "-0.5", id="float"),
        pytest.param(2.0, "2", id="integral-float"),
        pytest.param(123456.0, "123456", id="float-below-exponent"),
        pytest.param(1234567.0, "1.234567e+06", id="float-exponent"),
        pytest.param(1e21, "1e+21", id="big-float"),
        pytest.param(0.0001, "0.0001", id="small-float"),
        pytest.param(0.00001, "1e-05", id="tiny-float"),
        pytest.param(True, "true", id="bool"),
        pytest.param(["a", "b"], "[a b]", id="list"),
        pytest.param([[1, 2], [3]], "[[1 2] [3]]", id="nested-list"),
        pytest.param([], "[]", id="empty-list"),
        pytest.param({"b": 1, "a": "x"}, "map[a:x b:1]", id="map-sorted"),
        pytest.param({10: "b", 2: "c", 1: "a"}, "map[1:a 2:c 10:b]", id="int-keys-numeric-order"),
        pytest.param({}, "map[]", id="empty-map"),
        pytest.param([None, "x"], "[<nil> x]", id="nil-in-list"),
        pytest.param(None, "<no value>", id="nil"),
        pytest.param(b"hi", "[104 105]", id="bytes"),
    ],
)
def test_printing(value: object, expected: str) -> None:
    assert render("{{ .V }}", {"V": value}) == expected


@pytest.mark.parametrize(
    ("value", "truth"),
    [
        pytest.param(0, False, id="zero"),
        pytest.param(1, True, id="one"),
        pytest.param(0.0, False, id="zero-float"),
        pytest.param(0.5, True, id="float"),
        pytest.param("", False, id="empty-string"),
        pytest.param("x", True, id="string"),
        pytest.param([], False, id="empty-list"),
        pytest.param([0], True, id="list"),
        pytest.param({}, False, id="empty-map"),
        pytest.param({"a": 0}, True, id="map"),
        pytest.param(None, False, id="nil"),
        pytest.param(False, False, id="false"),
        pytest.param(True, True, id="true"),
        pytest.param(Message(role=""), True, id="struct-always-true"),
    ],
)
def test_truthiness(value: object, truth: bool) -> None:
    assert render("{{ if .V }}T{{ else }}F{{ end }}", {"V": value}) == ("T" if truth else "F")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ .Missing }}", "<no value>", id="missing-key-prints-no-value"),
        pytest.param("{{ .Nil }}", "<no value>", id="nil-value-prints-no-value"),
        pytest.param("{{ if .Missing }}y{{ else }}n{{ end }}", "n", id="missing-key-is-false"),
        pytest.param("{{ print .Missing }}", "<nil>", id="missing-as-argument"),
        pytest.param("{{ .Missing | print }}", "<nil>", id="missing-as-final-argument"),
        pytest.param('{{ printf "%v" .Missing }}', "<nil>", id="missing-in-printf"),
        pytest.param('{{ index . "Missing" }}', "<no value>", id="missing-via-index"),
        pytest.param('{{ index .M "zz" }}', "<no value>", id="missing-map-entry-via-index"),
        pytest.param("{{ $x := .Missing }}{{ $x.Field }}", "<no value>", id="field-of-nil-variable"),
        pytest.param("{{ with .Missing }}x{{ else }}none{{ end }}", "none", id="with-missing"),
        pytest.param("{{ range .Missing }}x{{ else }}empty{{ end }}", "empty", id="range-missing"),
    ],
)
def test_missing_keys(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        pytest.param("{{ if .A }}a{{ end }}", {"A": 1}, "a", id="if-true"),
        pytest.param("{{ if .A }}a{{ end }}", {"A": 0}, "", id="if-false"),
        pytest.param("{{ if .A }}a{{ else }}b{{ end }}", {"A": 0}, "b", id="if-else"),
        pytest.param("{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}", {"A": 0, "B": 1}, "b", id="else-if"),
        pytest.param("{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}", {"A": 0, "B": 0}, "c", id="else-if-else"),
        pytest.param("{{ if .A }}a{{ else if .B }}b{{ else if .C }}c{{ end }}", {"C": 1}, "c", id="long-chain"),
        pytest.param("{{ if .A }}{{ .B }}{{ end }}", {"A": 1, "B": "b"}, "b", id="if-keeps-dot"),
        pytest.param("{{ with .A }}{{ . }}{{ end }}", {"A": "x"}, "x", id="with-sets-dot"),
        pytest.param("{{ with .A }}{{ . }}{{ else }}none{{ end }}", {"A": ""}, "none", id="with-else"),
        pytest.param("{{ with .A }}a{{ else with .B }}{{ . }}{{ end }}", {"A": 0, "B": "b"}, "b", id="else-with"),
        pytest.param("{{ with $x := .A }}{{ $x }}{{ . }}{{ end }}", {"A": "x"}, "xx", id="with-declaration"),
    ],
)
def test_if_and_with(source: str, data: object, expected: str) -> None:
    assert render(source, data) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ range .S }}[{{ . }}]{{ end }}", "[a][b][c]", id="list"),
        pytest.param("{{ range $i, $v := .S }}{{ $i }}{{ $v }}{{ end }}", "0a1b2c", id="index-and-element"),
        pytest.param("{{ range $v := .S }}{{ $v }}{{ end }}", "abc", id="one-variable-is-element"),
        pytest.param("{{ range $i, $_ := .S }}{{ $.Name }}{{ $i }}{{ end }}", "n0n1n2", id="root-inside-range"),
        pytest.param("{{ range $i, $v := .S }}{{ if $i }}, {{ end }}{{ $v }}{{ end }}", "a, b, c", id="separator"),
        pytest.param("{{ range .Empty }}x{{ else }}empty{{ end }}", "empty", id="else-on-empty"),
        pytest.param("{{ range .EmptyMap }}x{{ else }}empty{{ end }}", "empty", id="else-on-empty-map"),
        pytest.param("{{ range .S }}{{ else }}empty{{ end }}", "", id="else-skipped"),
        pytest.param("{{ range $k, $v := .M }}{{ $k }}={{ $v }};{{ end }}", "a=1;b=2;c=3;", id="map-sorted"),
        pytest.param("{{ range $v := .M }}{{ $v }}{{ end }}", "123", id="map-one-variable"),
        pytest.param("{{ range .M }}{{ . }}{{ end }}", "123", id="map-dot"),
        pytest.param("{{ range 3 }}{{ . }}{{ end }}", "012", id="integer"),
        pytest.param("{{ range .L }}{{ if eq . 3 }}{{ break }}{{ end }}{{ . }}{{ end }}", "12", id="break"),
        pytest.param("{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}", "134", id="continue"),
        pytest.param("{{ range .L }}{{ break }}{{ else }}E{{ end }}", "", id="break-skips-else"),
        pytest.param(
            "{{ range .S }}{{ range $.L }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}|{{ end }}",
            "1|1|1|",
            id="break-inner-only",
        ),
        pytest.param(
            "{{ range .L }}{{ with . }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ end }}{{ . }}{{ end }}",
            "134",
            id="continue-from-nested-with",
        ),
        pytest.param("{{ range .Msg.Images }}x{{ else }}none{{ end }}", "none", id="struct-field-slice"),
    ],
)
def test_range(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ $x := 1 }}{{ $x }}", "1", id="declare"),
        pytest.param("{{ $x := 5 }}", "", id="declaration-prints-nothing"),
        pytest.param("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2", id="assign"),
        pytest.param("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}", "21", id="shadow-in-if"),
        pytest.param("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2", id="assign-outer-from-if"),
        pytest.param("{{ $x := 0 }}{{ range .L }}{{ $x = . }}{{ end }}{{ $x }}", "4", id="assign-outer-from-range"),
        pytest.param("{{ range .S }}{{ $y := . }}{{ $y }}{{ end }}", "abc", id="per-iteration-declaration"),
        pytest.param("{{ if $v := .Zero }}{{ $v }}{{ else }}{{ $v }}-else{{ end }}", "0-else", id="if-var-in-else"),
        pytest.param(
            '{{ $x := "a" }}{{ with $x := "b" }}{{ $x }}{{ end }}{{ $x }}', "ba", id="with-declaration-scoped"
        ),
        pytest.param(
            "{{ $i := 9 }}{{ $e := 9 }}{{ range $i, $e = .S }}{{ end }}{{ $i }}{{ $e }}", "2c", id="range-assign"
        ),
        pytest.param("{{ $ := 1 }}{{ $ }}", "1", id="redeclare-root"),
        pytest.param("{{ $m := .M }}{{ $m.a }}", "1", id="variable-field"),
    ],
)
def test_variables(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            "{{ index .L 9 }}",
            'template: :1:3: executing "" at <index .L 9>: error calling index: index out of range: 9',
            id="index-out-of-range",
        ),
        pytest.param(
            "a\n  {{ index .L 9 }}",
            'template: :2:5: executing "" at <index .L 9>: error calling index: index out of range: 9',
            id="position-on-later-line",
        ),
        pytest.param(
            "{{ .L 1 }}",
            'template: :1:3: executing "" at <.L>: L is not a method but has arguments',
            id="map-field-with-arguments",
        ),
        pytest.param(
            "{{ 1 | .Msg.Role }}",
            'template: :1:7: executing "" at <.Msg.Role>: Role has arguments but cannot be invoked as function',
            id="struct-field-with-arguments",
        ),
        pytest.param(
            '{{ "x" 1 }}',
            'template: :1:3: executing "" at <"x">: can\'t give argument to non-function "x"',
            id="call-non-function",
        ),
        pytest.param(
            "{{ $.Name 1 }}",
            'template: :1:3: executing "" at <$.Name>: Name is not a method but has arguments',
            id="variable-field-with-arguments",
        ),
        pytest.param("{{ nil }}", 'template: :1:3: executing "" at <nil>: nil is not a command', id="nil-command"),
        pytest.param(
            "{{ .Missing.B }}",
            'template: :1:3: executing "" at <.Missing.B>: nil pointer evaluating interface {}.B',
            id="field-through-nil",
        ),
        pytest.param(
            "{{ .Msg.Role.X }}",
            'template: :1:3: executing "" at <.Msg.Role.X>: can\'t evaluate field X in type string',
            id="field-of-string",
        ),
        pytest.param(
            "{{ .Msg.Nope }}",
            'template: :1:3: executing "" at <.Msg.Nope>: can\'t evaluate field Nope in type Message',
            id="unknown-struct-field",
        ),
        pytest.param(
            "{{ range 3.5 }}{{ end }}",
            'template: :1:9: executing "" at <{{range 3.5}}{{end}}>: range can\'t iterate over 3.5',
            id="range-over-float",
        ),
        pytest.param(
            "{{ $x = 1 }}", 'template: :1:8: executing "" at <1>: undefined variable: $x', id="assign-undeclared"
        ),
        pytest.param(
            "{{ len }}",
            'template: :1:3: executing "" at <len>: wrong number of args for len: want 1 got 0',
            id="too-few-arguments",
        ),
        pytest.param(
            "{{ not 1 2 }}",
            'template: :1:3: executing "" at <not 1 2>: wrong number of args for not: want 1 got 2',
            id="too-many-arguments",
        ),
        pytest.param(
            "{{ and }}",
            'template: :1:3: executing "" at <and>: wrong number of args for and: want at least 1 got 0',
            id="variadic-too-few",
        ),
        pytest.param(
            "{{ (nil).X }}",
            'template: :1:4: executing "" at <nil>: nil is not a command',
            id="nil-in-parenthesized-chain",
        ),
    ],
)
def test_runtime_errors(source: str, message: str) -> None:
    template = Template.parse(source, append_response=False)
    with pytest.raises(TemplateError) as info:
        template.execute(DATA)
    assert str(info.value) == message


def test_execute_with_no_data() -> None:
    assert render("{{ .X }}|{{ . }}", None) == "<no value>|<no value>"


def test_template_is_reusable() -> None:
    template = Template.parse("{{ range .S }}{{ $x := . }}{{ $x }}{{ end }}", append_response=False)
    assert template.execute({"S": ["a"]}) == "a"
    assert template.execute({"S": ["b", "c"]}) == "bc"
