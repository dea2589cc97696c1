"""Ollama's rules on top of Go templates: identifiers, appended Response, the Response cut, the tool-call tag,
and how the typed template data prints."""

from __future__ import annotations

import pytest

from server import gotemplate
from server.gotemplate import (
    Arguments,
    Message,
    Template,
    Tool,
    ToolCall,
    ToolCallFunction,
)

WEATHER_JSON = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather <now>",
        "parameters": {
            "type": "object",
            "required": ["city"],
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "days": {"type": ["integer", "null"]},
            },
        },
    },
}
WEATHER = Tool.from_json(WEATHER_JSON)
CALL = ToolCall(
    id="call_1", function=ToolCallFunction(name="get_weather", arguments=Arguments({"city": "Tokyo", "a<": 1}))
)


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        pytest.param("{{ .Tools }}", "tools", True, id="field"),
        pytest.param("{{ $.Tools }}", "Tools", True, id="root-variable-field"),
        pytest.param("{{ range .Messages }}{{ end }}", "MESSAGES", True, id="range-pipeline-any-case"),
        pytest.param("{{ if .Suffix }}{{ end }}", "suffix", True, id="if-condition"),
        pytest.param("{{ if 1 }}{{ else }}{{ .Suffix }}{{ end }}", "suffix", True, id="else-branch"),
        pytest.param("{{ len .Messages | print }}", "messages", True, id="function-argument"),
        pytest.param('{{ printf "%s" (.Response) }}', "response", True, id="parenthesized"),
        pytest.param('{{ (index . "x").Tools }}', "tools", True, id="chain"),
        pytest.param("{{ range .Messages }}{{ .ToolCalls }}{{ end }}", "toolcalls", True, id="nested-field"),
        pytest.param("{{ .Prompt }}", "tools", False, id="absent"),
        pytest.param("{{ $tools := 1 }}{{ $tools }}", "tools", False, id="variable-name-is-not-a-field"),
        pytest.param("Tools in text", "tools", False, id="plain-text"),
        pytest.param('{{ "Tools" }}', "tools", False, id="string-literal"),
    ],
)
def test_references(source: str, name: str, expected: bool) -> None:
    assert Template.parse(source).references(name) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ .Prompt }}", "pr", id="prompt-only-gets-response"),
        pytest.param("{{ .Prompt }}\n", "p\nr", id="after-trailing-text"),
        pytest.param("{{ .Prompt -}}\n", "pr", id="after-trimmed-text"),
        pytest.param("{{ .Prompt }}{{ .Response }}!", "pr!", id="has-response"),
        pytest.param("{{ .Prompt }}{{ .response }}", "p<no value>", id="lowercase-response-counts"),
        pytest.param("{{ range .Messages }}{{ end }}{{ .Prompt }}", "p", id="has-messages"),
        pytest.param("{{ if .X }}{{ .Response }}{{ end }}{{ .Prompt }}", "p", id="response-anywhere"),
    ],
)
def test_response_is_appended_when_missing(source: str, expected: str) -> None:
    assert Template.parse(source).execute({"Prompt": "p", "Response": "r"}) == expected


def test_append_response_can_be_disabled() -> None:
    assert Template.parse("{{ .Prompt }}", append_response=False).execute({"Prompt": "p", "Response": "r"}) == "p"


def test_empty_template_renders_response() -> None:
    assert Template.parse("").execute({"Response": "r"}) == "r"


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        pytest.param("A{{ .Response }}B", {"Response": "r"}, "Ar", id="top-level"),
        pytest.param("A{{ .Prompt }}B", {"Prompt": "p"}, "ApB", id="no-response-unchanged"),
        pytest.param(
            "{{ if .X }}A{{ .Response }}B{{ else }}C{{ end }}D", {"X": 1, "Response": "r"}, "Ar", id="inside-if"
        ),
        pytest.param(
            "{{ if .X }}A{{ .Response }}B{{ else }}C{{ end }}D", {"X": 0, "Response": "r"}, "", id="later-else-cut"
        ),
        pytest.param(
            "{{ if .X }}A{{ else }}B{{ .Response }}C{{ end }}D", {"X": 1, "Response": "r"}, "A", id="earlier-if-kept"
        ),
        pytest.param(
            "{{ if .X }}A{{ else }}B{{ .Response }}C{{ end }}D", {"X": 0, "Response": "r"}, "Br", id="inside-else"
        ),
        pytest.param(
            "{{ if .Response }}R{{ end }}X{{ .Response }}Y", {"Response": "r"}, "RXr", id="condition-does-not-cut"
        ),
        pytest.param(
            "{{ range .L }}<{{ .N }}{{ .Response }}>{{ end }}!",
            {"L": [{"N": 1, "Response": "a"}, {"N": 2, "Response": "b"}]},
            "<1a<2b",
            id="inside-range",
        ),
        pytest.param('{{ printf "%s!" .Response }}tail', {"Response": "r"}, "r!", id="response-as-argument"),
        pytest.param("a{{ $.Response }}b", {"Response": "r"}, "arb", id="variable-form-not-cut"),
        pytest.param(
            "{{ .Response }}{{ if .X }}x{{ end }}{{ .Response }}", {"X": 1, "Response": "r"}, "r", id="first-only"
        ),
    ],
)
def test_truncated_after_response(source: str, data: dict[str, object], expected: str) -> None:
    template = Template.parse(source, append_response=False)
    assert template.truncated_after_response().execute(data) == expected


def test_truncation_leaves_the_original_intact() -> None:
    template = Template.parse("A{{ .Response }}B")
    template.truncated_after_response()
    assert template.execute({"Response": "r"}) == "ArB"


def test_truncated_tree_keeps_structure() -> None:
    template = Template.parse("{{ if .X }}A{{ .Response }}B{{ else }}C{{ end }}D")
    assert str(template.truncated_after_response().root) == "{{if .X}}A{{.Response}}{{else}}{{end}}"


@pytest.mark.parametrize(
    ("source", "tag"),
    [
        pytest.param(
            "{{ if .ToolCalls }}[TOOL_CALLS] {{ range .ToolCalls }}{{ .Function.Name }}{{ end }}{{ end }}",
            "[TOOL_CALLS]",
            id="bracket-tag",
        ),
        pytest.param(
            '{{- if .ToolCalls }}\n{{ range .ToolCalls }}{"name": "{{ .Function.Name }}"}{{ end }}{{ end }}',
            "{",
            id="whitespace-then-json",
        ),
        pytest.param('{{ if .ToolCalls }}<tool>{"name"{{ end }}', "<tool>", id="cut-before-brace"),
        pytest.param("{{ if .ToolCalls }}  <tool>  \r\n{{ end }}", "<tool>", id="trimmed"),
        pytest.param("{{ if .ToolCalls }}{{ end }}", "{", id="no-text"),
        pytest.param("{{ if .ToolCalls }}{{ if .X }}<a>{{ end }}{{ end }}", "<a>", id="nested-text"),
        pytest.param("{{ if .ToolCalls }}{{ range .ToolCalls }}<b>{{ end }}{{ end }}", "<b>", id="text-in-range"),
        pytest.param("{{ if and .ToolCalls .X }}<c>{{ end }}", "<c>", id="and-condition"),
        pytest.param(
            "{{ range .Messages }}{{ if .Content }}x{{ else if .ToolCalls }}<d>{{ end }}{{ end }}",
            "<d>",
            id="else-if-in-range",
        ),
        pytest.param("{{ if .ToolCalls }}<e>{{ end }}{{ if .ToolCalls }}<f>{{ end }}", "<e>", id="first-block"),
        pytest.param("{{ if .ToolCalls }}{{ else }}<g>{{ end }}", "{", id="else-text-ignored"),
        pytest.param("{{ .Prompt }}", None, id="no-block"),
        pytest.param("{{ range .ToolCalls }}x{{ end }}", None, id="range-is-not-if"),
        pytest.param("{{ if $.ToolCalls }}x{{ end }}", None, id="variable-form-not-detected"),
    ],
)
def test_tool_call_tag(source: str, tag: str | None) -> None:
    assert Template.parse(source).tool_call_tag() == tag


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ .Function.Arguments }}", '{"a\\u003c":1,"city":"Tokyo"}', id="arguments-print-json"),
        pytest.param("{{ .Function.Arguments.city }}", "Tokyo", id="argument-by-key"),
        pytest.param(
            "{{ range $k, $v := .Function.Arguments }}{{ $k }}={{ $v }};{{ end }}", "a<=1;city=Tokyo;", id="range-args"
        ),
        pytest.param("{{ .ID }} {{ .Function.Name }} {{ .Function.Index }}", "call_1 get_weather 0", id="call-fields"),
        pytest.param(
            "{{ json . }}",
            '{"id":"call_1","function":{"name":"get_weather","arguments":{"a\\u003c":1,"city":"Tokyo"}}}',
            id="call-json",
        ),
    ],
)
def test_tool_call_data(source: str, expected: str) -> None:
    assert Template.parse(source, append_response=False).execute(CALL) == expected


FUNCTION_JSON = (
    '{"name":"get_weather","description":"Weather \\u003cnow\\u003e","parameters":{"type":"object",'
    '"required":["city"],"properties":{"city":{"type":"string","description":"City name"},'
    '"days":{"type":["integer","null"]}}}}'
)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "{{ range .Tools }}{{ . }}{{ end }}", '{"type":"function","function":' + FUNCTION_JSON + "}", id="tool"
        ),
        pytest.param("{{ range .Tools }}{{ .Function }}{{ end }}", FUNCTION_JSON, id="function"),
        pytest.param(
            "{{ range .Tools }}{{ json . }}{{ end }}",
            '{"type":"function","function":' + FUNCTION_JSON + "}",
            id="json-tool",
        ),
        pytest.param("{{ range .Tools }}{{ .Function.Name }}{{ end }}", "get_weather", id="function-name"),
        pytest.param(
            "{{ range .Tools }}{{ range $n, $p := .Function.Parameters.Properties }}"
            "{{ $n }}:{{ $p.Type }};{{ end }}{{ end }}",
            "city:string;days:[integer null];",
            id="property-types",
        ),
        pytest.param(
            "{{ range .Tools }}{{ range $n, $p := .Function.Parameters.Properties }}"
            "{{ $n }}: {{ toTypeScriptType $p }};{{ end }}{{ end }}",
            "city: string;days: number | null;",
            id="typescript",
        ),
        pytest.param("{{ range .Tools }}{{ .Function.Parameters.Required }}{{ end }}", "[city]", id="required"),
        pytest.param("{{ .Tools }}", "[" + '{"type":"function","function":' + FUNCTION_JSON + "}]", id="tool-list"),
    ],
)
def test_tool_data(source: str, expected: str) -> None:
    assert Template.parse(source, append_response=False).execute({"Tools": [WEATHER]}) == expected


def test_tool_from_json_drops_unknown_fields_and_keeps_null_properties() -> None:
    tool = Tool.from_json({"type": "function", "extra": 1, "function": {"name": "f", "parameters": {"type": "object"}}})
    rendered = Template.parse("{{ json . }}", append_response=False).execute(tool)
    assert rendered == '{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":null}}}'


def test_tool_call_from_json() -> None:
    call = ToolCall.from_json({"function": {"name": "f", "arguments": {"b": 1, "a": "x"}, "index": 2}})
    assert (
        Template.parse("{{ .Function.Index }} {{ .Function.Arguments }}", append_response=False).execute(call)
        == '2 {"a":"x","b":1}'
    )


def test_message_fields_by_go_name() -> None:
    message = Message(role="tool", content="c", thinking="t", tool_name="n", tool_call_id="i", tool_calls=(CALL,))
    source = "{{ .Role }}|{{ .Content }}|{{ .Thinking }}|{{ .ToolName }}|{{ .ToolCallID }}|{{ len .ToolCalls }}"
    assert Template.parse(source, append_response=False).execute(message) == "tool|c|t|n|i|1"


def test_public_names() -> None:
    assert set(gotemplate.__all__) == {name for name in dir(gotemplate) if not name.startswith("_")} - {
        "data",
        "execute",
        "floats",
        "functions",
        "gofmt",
        "gojson",
        "lexer",
        "literals",
        "nodes",
        "parser",
        "template",
        "values",
        "annotations",
    }
