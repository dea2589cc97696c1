"""Builtin functions and Ollama's additions, table by table."""

from __future__ import annotations

import datetime

import pytest

from server.errors import TemplateError
from server.gotemplate import Arguments, PropertyType, Template, ToolProperty

DATA = {
    "L": [1, 2, 3],
    "S": ["a", "b"],
    "M": {"a": 1, "b": {"c": [10, 20]}},
    "Str": "héllo",
    "Zero": 0,
}


def render(source: str, data: object = DATA) -> str:
    return Template.parse(source, append_response=False).execute(data)


def error_of(source: str, data: object = DATA) -> str:
    with pytest.raises(TemplateError) as info:
        render(source, data)
    return str(info.value).split(": ", 3)[-1]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ and 1 2 }}", "2", id="and-returns-last"),
        pytest.param("{{ and 1 0 2 }}", "0", id="and-returns-first-false"),
        pytest.param('{{ or 0 "" }}', "", id="or-returns-last"),
        pytest.param('{{ or 0 "x" 1 }}', "x", id="or-returns-first-true"),
        pytest.param("{{ or 1 .Missing.Field }}", "1", id="or-short-circuits"),
        pytest.param("{{ and 0 .Missing.Field }}", "0", id="and-short-circuits"),
        pytest.param("{{ 0 | or 5 }}", "5", id="or-in-pipeline"),
        pytest.param("{{ 3 | and 1 }}", "3", id="and-final-argument"),
        pytest.param("{{ not 0 }} {{ not .L }} {{ not .Missing }}", "true false true", id="not"),
        pytest.param('{{ len .L }} {{ len .Str }} {{ len .M }} {{ len "" }}', "3 6 2 0", id="len-bytes"),
        pytest.param("{{ index .L 0 }} {{ index .L 2 }}", "1 3", id="index-list"),
        pytest.param('{{ index .M "a" }}', "1", id="index-map"),
        pytest.param('{{ index .M "b" "c" 1 }}', "20", id="index-multiple-keys"),
        pytest.param('{{ index "abc" 1 }}', "98", id="index-string-byte"),
        pytest.param("{{ index .L }}", "[1 2 3]", id="index-no-keys"),
        pytest.param("{{ slice .L 1 }}", "[2 3]", id="slice-from"),
        pytest.param("{{ slice .L 1 2 }}", "[2]", id="slice-range"),
        pytest.param("{{ slice .L 0 1 3 }}", "[1]", id="slice-three-indexes"),
        pytest.param("{{ slice .L }}", "[1 2 3]", id="slice-whole"),
        pytest.param("{{ slice .L 3 }}", "[]", id="slice-at-end"),
        pytest.param('{{ slice "hello" 1 3 }}', "el", id="slice-string"),
        pytest.param("{{ eq (len (slice $.L 2)) 1 }}", "true", id="is-last-idiom"),
        pytest.param('{{ print "a" "b" }}', "ab", id="print-strings"),
        pytest.param("{{ print 1 2 }}", "1 2", id="print-numbers-spaced"),
        pytest.param('{{ print "a" 1 "b" }}', "a1b", id="print-mixed"),
        pytest.param('{{ print 1 "a" 2 }}', "1a2", id="print-mixed-number-first"),
        pytest.param("{{ print true false nil }}", "true false <nil>", id="print-bools-nil"),
        pytest.param("{{ print }}", "", id="print-nothing"),
        pytest.param("{{ print .S .M }}", "[a b] map[a:1 b:map[c:[10 20]]]", id="print-containers"),
        pytest.param('{{ println "a" 1 }}', "a 1\n", id="println"),
        pytest.param("{{ println }}", "\n", id="println-nothing"),
        pytest.param(
            '{{ html "<a href=\\"x\\">\'&\'</a>" }}', "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;", id="html"
        ),
        pytest.param("{{ html 1 2 }}", "1 2", id="html-non-strings"),
        pytest.param("{{ html .Missing }}", "&lt;no value&gt;", id="html-missing"),
        pytest.param(
            '{{ js "it\'s \\"q\\" <b>&=\\n" }}', 'it\\\'s \\"q\\" \\u003Cb\\u003E\\u0026\\u003D\\u000A', id="js"
        ),
        pytest.param('{{ urlquery "a b&c=d/é" }}', "a+b%26c%3Dd%2F%C3%A9", id="urlquery"),
        pytest.param("{{ .Str | html }}", "héllo", id="html-in-pipeline"),
    ],
)
def test_builtins(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param('{{ eq "a" "a" }}', "true", id="eq-strings"),
        pytest.param("{{ eq 1 2 }}", "false", id="eq-false"),
        pytest.param("{{ eq 1 2 3 1 }}", "true", id="eq-any-of"),
        pytest.param("{{ eq true true }}", "true", id="eq-bools"),
        pytest.param("{{ eq 1.5 1.5 }}", "true", id="eq-floats"),
        pytest.param('{{ eq .Missing "x" }}', "false", id="eq-nil-and-string"),
        pytest.param("{{ ne 1 2 }} {{ ne 1 1 }}", "true false", id="ne"),
        pytest.param("{{ lt 1 2 }} {{ lt 2 1 }}", "true false", id="lt"),
        pytest.param("{{ le 2 2 }} {{ le 3 2 }}", "true false", id="le"),
        pytest.param('{{ gt "b" "a" }} {{ gt "a" "b" }}', "true false", id="gt-strings"),
        pytest.param("{{ ge 1.5 2.5 }} {{ ge 2.5 2.5 }}", "false true", id="ge-floats"),
        pytest.param("{{ if eq .Zero 0 }}zero{{ end }}", "zero", id="eq-in-if"),
    ],
)
def test_comparisons(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("{{ index .L 3 }}", "error calling index: index out of range: 3", id="index-past-end"),
        pytest.param("{{ index .L -1 }}", "error calling index: index out of range: -1", id="index-negative"),
        pytest.param(
            '{{ index .L "a" }}', "error calling index: cannot index slice/array with type string", id="index-type"
        ),
        pytest.param("{{ index nil 1 }}", "error calling index: index of untyped nil", id="index-nil"),
        pytest.param("{{ index 5 1 }}", "error calling index: can't index item of type int", id="index-int"),
        pytest.param("{{ slice .L 2 1 }}", "error calling slice: invalid slice index: 2 > 1", id="slice-inverted"),
        pytest.param("{{ slice .L 0 5 }}", "error calling slice: index out of range: 5", id="slice-past-end"),
        pytest.param(
            '{{ slice "abc" 0 1 2 }}', "error calling slice: cannot 3-index slice a string", id="slice-3-string"
        ),
        pytest.param("{{ slice .L 1 2 3 4 }}", "error calling slice: too many slice indexes: 4", id="slice-4"),
        pytest.param("{{ len 3 }}", "error calling len: len of type int", id="len-int"),
        pytest.param('{{ eq 1 "a" }}', "error calling eq: incompatible types for comparison", id="eq-mixed"),
        pytest.param("{{ eq 1 1.0 }}", "error calling eq: incompatible types for comparison", id="eq-int-float"),
        pytest.param("{{ eq .L .L }}", "error calling eq: non-comparable type []interface {}", id="eq-lists"),
        pytest.param("{{ eq 1 }}", "error calling eq: missing argument for comparison", id="eq-one-arg"),
        pytest.param("{{ lt true false }}", "error calling lt: invalid type for comparison", id="lt-bools"),
        pytest.param('{{ lt "a" 1 }}', "error calling lt: incompatible types for comparison", id="lt-mixed"),
        pytest.param("{{ lt .Missing 1 }}", "error calling lt: invalid type for comparison", id="lt-nil"),
        pytest.param(
            "{{ printf 1 }}", "error calling printf: wrong type for value; expected string; got int", id="printf-format"
        ),
        pytest.param("{{ call .L }}", "error calling call: non-function of type []interface {}", id="call"),
        pytest.param("{{ and 1 .Missing.Field }}", "nil pointer evaluating interface {}.Field", id="and-evaluates"),
    ],
)
def test_function_errors(source: str, message: str) -> None:
    assert error_of(source) == message


@pytest.mark.parametrize(
    ("format", "args", "expected"),
    [
        pytest.param("%s", ["x"], "x", id="s"),
        pytest.param("%d", [42], "42", id="d"),
        pytest.param("%5d|%-5d|%05d", [42, 42, -42], "   42|42   |-0042", id="d-widths"),
        pytest.param("%+d % d", [5, 5], "+5  5", id="d-sign-flags"),
        pytest.param("%x %X %o %b %#x", [255, 255, 8, 5, 255], "ff FF 10 101 0xff", id="int-bases"),
        pytest.param("%c%c", [72, 105], "Hi", id="c"),
        pytest.param("%q", ['hi\n"é\x01'], '"hi\\n\\"é\\x01"', id="q-string"),
        pytest.param("%q", [65], "'A'", id="q-int"),
        pytest.param("%v", [[1, 2]], "[1 2]", id="v-list"),
        pytest.param("%v", [{"b": 1, "a": 2}], "map[a:2 b:1]", id="v-map"),
        pytest.param("%v %v", [None, True], "<nil> true", id="v-nil-bool"),
        pytest.param("%v", [1.0], "1", id="v-float"),
        pytest.param("%s", [["a", "b"]], "[a b]", id="s-list"),
        pytest.param("%f", [3.14159], "3.141590", id="f"),
        pytest.param("%.2f", [3.14159], "3.14", id="f-precision"),
        pytest.param("%8.3f|", [3.14159], "   3.142|", id="f-width-precision"),
        pytest.param("%e", [1234.5], "1.234500e+03", id="e"),
        pytest.param("%g %g", [0.00001, 100.0], "1e-05 100", id="g"),
        pytest.param("%t", [True], "true", id="t"),
        pytest.param("%6.2s|%-4s|", ["abcdef", "ab"], "    ab|ab  |", id="s-width-precision"),
        pytest.param("%x", ["hi"], "6869", id="x-string"),
        pytest.param("100%%", [], "100%", id="percent"),
        pytest.param("%s %s", ["a"], "a %!s(MISSING)", id="missing-arg"),
        pytest.param("%d", ["x"], "%!d(string=x)", id="bad-verb-string"),
        pytest.param("%s", [1], "%!s(int=1)", id="bad-verb-int"),
        pytest.param("%d", [None], "%!d(<nil>)", id="bad-verb-nil"),
        pytest.param("%s", ["a", "b", 1], "a%!(EXTRA string=b, int=1)", id="extra-args"),
        pytest.param("abc%", [], "abc%!(NOVERB)", id="no-verb"),
        pytest.param("%s\n\n%s", ["a", "b"], "a\n\nb", id="gemma-join"),
    ],
)
def test_printf(format: str, args: list[object], expected: str) -> None:
    names = [f"A{i}" for i in range(len(args))]
    source = "{{ printf .F " + " ".join("." + n for n in names) + " }}"
    data = {"F": format, **dict(zip(names, args, strict=True))}
    assert render(source, data) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"b": 1, "a": [True, None, 1.5, "x"]}, '{"a":[true,null,1.5,"x"],"b":1}', id="sorted-compact"),
        pytest.param(
            '<tag> & "q" \\ \n\t\u2028', '"\\u003ctag\\u003e \\u0026 \\"q\\" \\\\ \\n\\t\\u2028"', id="escapes"
        ),
        pytest.param("\x01é日本", '"\\u0001é日本"', id="control-and-unicode"),
        pytest.param(1.0, "1", id="integral-float"),
        pytest.param(1e21, "1e+21", id="big-float"),
        pytest.param(1e-7, "1e-7", id="tiny-float"),
        pytest.param(0.000001, "0.000001", id="small-float"),
        pytest.param(1e20, "100000000000000000000", id="large-float-no-exponent"),
        pytest.param(None, "null", id="null"),
        pytest.param(float("nan"), "", id="nan-prints-nothing"),
        pytest.param(b"hi", '"aGk="', id="bytes-base64"),
        pytest.param(Arguments({"z": 1, "a": {"y": 2, "b": 3}}), '{"a":{"b":3,"y":2},"z":1}', id="arguments"),
    ],
)
def test_json(value: object, expected: str) -> None:
    assert render("{{ json .V }}", {"V": value}) == expected


def test_dates() -> None:
    before = datetime.datetime.now().date()
    rendered = render("{{ currentDate }}|{{ yesterdayDate }}|{{ currentDate 1 }}")
    after = datetime.datetime.now().date()
    today, yesterday, with_args = rendered.split("|")
    assert today in (before.isoformat(), after.isoformat())
    assert yesterday == (datetime.date.fromisoformat(today) - datetime.timedelta(days=1)).isoformat()
    assert with_args == today


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        pytest.param(("string",), "string", id="string"),
        pytest.param(("integer",), "number", id="integer"),
        pytest.param(("number", "null"), "number | null", id="union"),
        pytest.param(("boolean",), "boolean", id="boolean"),
        pytest.param(("array",), "any[]", id="array"),
        pytest.param(("object",), "Record<string, any>", id="object"),
        pytest.param(("weird",), "any", id="unknown"),
        pytest.param((), "any", id="none"),
    ],
)
def test_to_typescript_type(types: tuple[str, ...], expected: str) -> None:
    prop = ToolProperty(type=PropertyType(types))
    assert render("{{ toTypeScriptType .P }}", {"P": prop}) == expected


def test_to_typescript_type_of_non_property() -> None:
    assert render('{{ toTypeScriptType "string" }}') == "any"
