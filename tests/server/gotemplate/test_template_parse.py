"""Lexing and parsing: trim markers, comments, literals and parse errors with line numbers."""

from __future__ import annotations

import pytest

from server.errors import TemplateError
from server.gotemplate import Template


def render(source: str, data: object = None) -> str:
    return Template.parse(source, append_response=False).execute(data)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("a {{- 1 }} b", "a1 b", id="left-trim"),
        pytest.param("a {{ 1 -}} b", "a 1b", id="right-trim"),
        pytest.param("a \n\t {{- 1 -}} \r\n b", "a1b", id="both-trim-all-space-kinds"),
        pytest.param("a {{-1}} b", "a -1 b", id="minus-without-space-is-a-number"),
        pytest.param("a {{ -1 }} b", "a -1 b", id="negative-number"),
        pytest.param("{{ 3 -}}\n\n  x", "3x", id="right-trim-newlines"),
        pytest.param("x {{- /* comment */ -}} y", "xy", id="trimmed-comment"),
        pytest.param("x {{/* comment */}} y", "x  y", id="comment"),
        pytest.param("x{{/* multi\nline */}}y", "xy", id="multiline-comment"),
        pytest.param("x\n{{- if true }}\n  y\n{{- end }}\n", "x\n  y\n", id="trim-around-if"),
        pytest.param("{{ 1 }}  {{- 2 }}", "12", id="trim-between-actions"),
        pytest.param("a\t{{- 1 }}", "a1", id="left-trim-tab"),
        pytest.param("{{ 1 }}{{ 2 }}", "12", id="adjacent"),
        pytest.param("{{\n1\n}}", "1", id="newlines-inside-action"),
        pytest.param("}} {{ 1 }} }}", "}} 1 }}", id="stray-right-delims-are-text"),
    ],
)
def test_text_and_trimming(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param('{{ "a\\tb\\u00e9\\x41\\101\\\\\\"" }}', 'a\tbéAA\\"', id="string-escapes"),
        pytest.param('{{ "\\xc3\\xa9" }}', "é", id="string-utf8-bytes"),
        pytest.param("{{ `raw\\n {{ }}` }}", "raw\\n {{ }}", id="raw-string"),
        pytest.param("{{ `a\nb` }}", "a\nb", id="raw-string-multiline"),
        pytest.param("{{ 'a' }} {{ '\\n' }} {{ '\\x41' }} {{ 'é' }}", "97 10 65 233", id="chars"),
        pytest.param("{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 017 }} {{ 0b11 }}", "1000 31 15 15 3", id="int-bases"),
        pytest.param("{{ -3 }} {{ +4 }}", "-3 4", id="signs"),
        pytest.param("{{ 1.50 }} {{ 2e3 }} {{ 1e-7 }} {{ .5 }}", "1.5 2000 1e-07 0.5", id="floats"),
        pytest.param("{{ 0x1p4 }}", "16", id="hex-float"),
        pytest.param("{{ true }} {{ false }}", "true false", id="bools"),
    ],
)
def test_literals(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("{{ .X", "template: :1: unclosed action", id="unclosed-action"),
        pytest.param("a\nb\n{{ .X }", 'template: :3: unexpected "}" in operand', id="stray-brace"),
        pytest.param("{{ foo 1 }}", 'template: :1: function "foo" not defined', id="unknown-function"),
        pytest.param("x\n{{ if .X }}a", "template: :2: unexpected EOF", id="missing-end"),
        pytest.param("x\n{{ end }}", "template: :2: unexpected {{end}}", id="unexpected-end"),
        pytest.param("{{ else }}", "template: :1: unexpected {{else}}", id="else-outside-if"),
        pytest.param(
            "{{ if 1 }}{{ else }}{{ else }}{{ end }}", "template: :1: expected end; found {{else}}", id="two-elses"
        ),
        pytest.param(
            "{{ range .X }}\n{{ else }}\n{{ else }}{{ end }}",
            "template: :3: expected end; found {{else}}",
            id="range-two-elses",
        ),
        pytest.param(
            "{{ range .X }}{{ else if 1 }}{{ end }}", "template: :1: unexpected <if> in input", id="range-else-if"
        ),
        pytest.param("{{ end 1 }}", 'template: :1: unexpected "1" in end', id="end-with-argument"),
        pytest.param("{{ break }}", "template: :1: {{break}} outside {{range}}", id="break-outside-range"),
        pytest.param("{{ continue }}", "template: :1: {{continue}} outside {{range}}", id="continue-outside-range"),
        pytest.param(
            "{{ range .X }}{{ else }}{{ break }}{{ end }}",
            "template: :1: {{break}} outside {{range}}",
            id="break-in-range-else",
        ),
        pytest.param("{{ $x }}", 'template: :1: undefined variable "$x"', id="undefined-variable"),
        pytest.param(
            "{{ if 1 }}{{ $x := 1 }}{{ end }}\n{{ $x }}",
            'template: :2: undefined variable "$x"',
            id="variable-out-of-scope",
        ),
        pytest.param("{{ }}", "template: :1: missing value for command", id="empty-action"),
        pytest.param("{{ if }}{{ end }}", "template: :1: missing value for if", id="empty-if"),
        pytest.param(
            "{{ .X | 1 }}", "template: :1: non executable command in pipeline stage 2", id="constant-pipeline-stage"
        ),
        pytest.param("{{ (1 }}", "template: :1: unclosed left paren", id="unclosed-paren"),
        pytest.param("{{ 1) }}", "template: :1: unexpected right paren", id="unexpected-paren"),
        pytest.param('{{ "abc }}', "template: :1: unterminated quoted string", id="unterminated-string"),
        pytest.param("{{ `abc }}", "template: :1: unterminated raw quoted string", id="unterminated-raw"),
        pytest.param("{{ 'ab' }}", "template: :1: malformed character constant: 'ab'", id="bad-char"),
        pytest.param('{{ "\\q" }}', "template: :1: invalid syntax", id="bad-escape"),
        pytest.param("{{/* open }}", "template: :1: unclosed comment", id="unclosed-comment"),
        pytest.param("{{/* c */ x }}", "template: :1: comment ends before closing delimiter", id="comment-then-text"),
        pytest.param("{{ 1-}}", 'template: :1: bad number syntax: "1-"', id="trim-marker-needs-space"),
        pytest.param("{{ 3x }}", 'template: :1: bad number syntax: "3x"', id="bad-number"),
        pytest.param("{{ 09 }}", 'template: :1: integer overflow: "09"', id="bad-octal"),
        pytest.param('{{ "a".B }}', 'template: :1: unexpected . after term "\\"a\\""', id="field-on-literal"),
        pytest.param("{{ $x, $y := 1 }}", "template: :1: too many declarations in command", id="two-declarations"),
        pytest.param(
            "{{ range $a, $b, $c := .X }}{{ end }}", "template: :1: too many declarations in range", id="three-in-range"
        ),
        pytest.param("{{ .X := 1 }}", 'template: :1: unexpected ":=" in operand', id="declare-field"),
        pytest.param('{{ define "x" }}{{ end }}', "template: :1: {{define}} is not supported", id="define"),
        pytest.param("{{ .X\n\n", "template: :3: unclosed action in action started at :1", id="unclosed-multiline"),
        pytest.param("{{ # }}", 'template: :1: unexpected "#" in command', id="bad-char-in-action"),
        pytest.param("{{ .X\u00a7 }}", "template: :1: bad character U+00A7 '§'", id="bad-character-after-field"),
    ],
)
def test_parse_errors(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        Template.parse(source)
    assert str(info.value) == message


def test_parse_error_is_a_bad_request() -> None:
    with pytest.raises(TemplateError) as info:
        Template.parse("{{ if }}")
    assert info.value.status_code == 400
