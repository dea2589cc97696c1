"""Modelfile parsing (Ollama's grammar and error texts) and writing (``ollama show --modelfile``), with round-trip."""

from __future__ import annotations

import random
from typing import Any

import pytest

from server.errors import ModelfileError
from server.store.modelfile import Instruction, Modelfile, parse_modelfile, render_modelfile

ERR_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", "draft", "renderer", "parser",'
    ' "parameter", "message", or "requires"'
)
ERR_ROLE = 'message role must be one of "system", "user", or "assistant"'
# Go's unicode.IsSpace set: what trimming a value removes.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


def parse_error(text: str | bytes) -> ModelfileError:
    with pytest.raises(ModelfileError) as caught:
        parse_modelfile(text)
    return caught.value


# --- instructions ----------------------------------------------------------------------------------------------

INSTRUCTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("from-name", "FROM llama3.2:3b", {"from_": "llama3.2:3b", "froms": ["llama3.2:3b"]}),
    ("from-path-with-spaces", "FROM /what/is/the path ", {"from_": "/what/is/the path"}),
    ("from-quoted", 'FROM "     model 1"', {"from_": "     model 1"}),
    ("parameter", "FROM m\nPARAMETER temperature 0.7", {"parameters": {"temperature": 0.7}}),
    ("parameter-tab-separated", "FROM m\nPARAMETER\ttop_k\t20", {"parameters": {"top_k": 20}}),
    ("parameter-extra-spaces", "FROM m\nPARAMETER top_k     20   ", {"parameters": {"top_k": 20}}),
    ("stop-accumulates", 'FROM m\nPARAMETER stop a\nPARAMETER stop "b "', {"parameters": {"stop": ["a", "b "]}}),
    ("stop-with-spaces", "FROM m\nPARAMETER stop ### User: ", {"parameters": {"stop": ["### User:"]}}),
    ("template", "FROM m\nTEMPLATE {{ .Prompt }}", {"template": "{{ .Prompt }}"}),
    ("system", "FROM m\nSYSTEM You are terse.", {"system": "You are terse."}),
    ("adapter", "FROM m\nADAPTER ./lora.gguf", {"adapters": ["./lora.gguf"]}),
    ("license", "FROM m\nLICENSE MIT\nLICENSE Apache-2.0", {"licenses": ["MIT", "Apache-2.0"]}),
    (
        "messages",
        "FROM m\nMESSAGE system Be nice.\nMESSAGE user Hi!\nMESSAGE assistant Hello: there",
        {"messages": [("system", "Be nice."), ("user", "Hi!"), ("assistant", "Hello: there")]},
    ),
    ("requires", "FROM m\nREQUIRES 0.14.0", {"requires": "0.14.0"}),
    ("requires-v-prefix", "FROM m\nREQUIRES v0.14.0", {"requires": "0.14.0"}),
    ("renderer", "FROM m\nRENDERER qwen3-coder", {"renderer": "qwen3-coder"}),
    ("parser", "FROM m\nPARSER qwen3-coder", {"parser": "qwen3-coder"}),
    ("draft", "FROM m\nDRAFT ./assistant", {"draft": "./assistant"}),
    ("from-anywhere", "PARAMETER top_k 1\nFROM foo", {"from_": "foo", "parameters": {"top_k": 1}}),
    ("last-from-wins", "FROM a\nFROM b", {"from_": "b", "froms": ["a", "b"]}),
    ("last-template-wins", "FROM m\nTEMPLATE a\nTEMPLATE b", {"template": "b"}),
    ("last-system-wins", "FROM m\nSYSTEM a\nSYSTEM b", {"system": "b"}),
    ("adapters-accumulate", "FROM m\nADAPTER a\nADAPTER b", {"adapters": ["a", "b"]}),
    ("empty-system-quoted", 'FROM m\nSYSTEM ""', {"system": ""}),
    ("empty-system-triple", 'FROM m\nSYSTEM """"""', {"system": ""}),
    ("empty-system-bare", "FROM m\nSYSTEM \n", {"system": ""}),
    ("absent-fields", "FROM m", {"template": None, "system": None, "requires": None, "parameters": {}, "messages": []}),
]


@pytest.mark.parametrize(("text", "expected"), [row[1:] for row in INSTRUCTIONS], ids=[row[0] for row in INSTRUCTIONS])
def test_instruction(text: str, expected: dict[str, Any]) -> None:
    parsed = parse_modelfile(text)
    for field_name, value in expected.items():
        assert getattr(parsed, field_name) == value, field_name


CASE_RULES = [
    ("keyword-lower", "from m\nparameter top_k 1\nsystem s", {"from_": "m", "parameters": {"top_k": 1}, "system": "s"}),
    (
        "keyword-mixed",
        "fRoM m\nPaRaMeTeR top_k 1\nMeSsAgE user u",
        {"parameters": {"top_k": 1}, "messages": [("user", "u")]},
    ),
    ("requires-lower", "FROM m\nrequires 1.2.3", {"requires": "1.2.3"}),
]


@pytest.mark.parametrize(("text", "expected"), [row[1:] for row in CASE_RULES], ids=[row[0] for row in CASE_RULES])
def test_keywords_are_case_insensitive(text: str, expected: dict[str, Any]) -> None:
    parsed = parse_modelfile(text)
    for field_name, value in expected.items():
        assert getattr(parsed, field_name) == value


def test_parameter_names_are_case_sensitive() -> None:
    error = parse_error("FROM m\nPARAMETER Temperature 1")
    assert (error.message, error.line, error.text) == ("(line 2): unknown parameter 'Temperature'", 2, "Temperature")


@pytest.mark.parametrize("role", ["User", "SYSTEM", "tool", "bad"])
def test_message_roles_are_case_sensitive(role: str) -> None:
    error = parse_error(f"FROM m\nMESSAGE {role} hi")
    assert error.message == f"(line 2): {ERR_ROLE}: {role!r}"
    assert (error.line, error.text) == (2, role)


# --- comments, white space, line breaks ------------------------------------------------------------------------

COMMENTS = [
    ("whole-line", "# comment\nFROM m", {"from_": "m"}),
    ("indented", "   \t# comment\nFROM m", {"from_": "m"}),
    ("at-eof-without-newline", "FROM m\n# the end", {"from_": "m"}),
    ("hash-inside-value", "FROM m\nSYSTEM say # not a comment", {"system": "say # not a comment"}),
    ("hash-as-value", "FROM m\nPARAMETER stop #", {"parameters": {"stop": ["#"]}}),
    ("hash-line-inside-quotes", 'FROM m\nSYSTEM """a\n# kept\nb"""', {"system": "a\n# kept\nb"}),
    ("command-in-comment", "# FROM other\nFROM m", {"from_": "m", "froms": ["m"]}),
]


@pytest.mark.parametrize(("text", "expected"), [row[1:] for row in COMMENTS], ids=[row[0] for row in COMMENTS])
def test_comments(text: str, expected: dict[str, Any]) -> None:
    parsed = parse_modelfile(text)
    for field_name, value in expected.items():
        assert getattr(parsed, field_name) == value


LINE_BREAKS = [
    ("lf", "FROM m\nSYSTEM s\nPARAMETER top_k 1\n"),
    ("crlf", "FROM m\r\nSYSTEM s\r\nPARAMETER top_k 1\r\n"),
    ("cr", "FROM m\rSYSTEM s\rPARAMETER top_k 1\r"),
    ("blank-lines-and-indent", "\n\n  FROM m\n\n\t SYSTEM s   \n\n   PARAMETER top_k 1"),
]


@pytest.mark.parametrize("text", [row[1] for row in LINE_BREAKS], ids=[row[0] for row in LINE_BREAKS])
def test_line_breaks(text: str) -> None:
    parsed = parse_modelfile(text)
    assert (parsed.from_, parsed.system, parsed.parameters) == ("m", "s", {"top_k": 1})
    assert [ins.line for ins in parsed.instructions] == [ins.line for ins in parse_modelfile(text).instructions]


def test_instructions_keep_order_and_lines() -> None:
    parsed = parse_modelfile('# c\nFROM m\n\nSYSTEM """a\nb"""\r\nPARAMETER stop x\rMESSAGE user hi\n')
    assert parsed.instructions == (
        Instruction("from", "", "m", 2),
        Instruction("system", "", "a\nb", 4),
        Instruction("parameter", "stop", "x", 6),
        Instruction("message", "user", "hi", 7),
    )


# --- quoting -----------------------------------------------------------------------------------------------------

QUOTING = [
    ("bare-trimmed", "SYSTEM   hello world  ", "hello world"),
    ("bare-keeps-quotes-inside", 'SYSTEM say "hi"', 'say "hi"'),
    ("bare-trailing-quote", 'SYSTEM abc"', 'abc"'),
    ("double", 'SYSTEM "  padded  "', "  padded  "),
    ("double-single-quote-inside", 'SYSTEM "\'"', "'"),
    ("double-no-escapes", 'SYSTEM "a\\nb\\"', "a\\nb\\"),
    ("double-outer-only", 'SYSTEM "a" "b"', 'a" "b'),
    ("double-multiline", 'SYSTEM "line one\n  line two\n"', "line one\n  line two\n"),
    ("double-ends-at-first-closing-line", 'SYSTEM "a\nb"\nSYSTEM c', "c"),
    ("triple", 'SYSTEM """hi"""', "hi"),
    ("triple-keeps-space", 'SYSTEM """   padded   """   ', "   padded   "),
    ("triple-multiline", 'SYSTEM """\nThis is a\nmultiline system.\n"""', "\nThis is a\nmultiline system.\n"),
    ("triple-inner-quotes", 'SYSTEM """\nRespond with "Hello!".\n"""', '\nRespond with "Hello!".\n'),
    ("triple-many-quotes", 'SYSTEM """\'\'"\'""\'""\'"\'\'\'\'\'""\'""\'"""', "''\"'\"\"'\"\"'\"'''''\"\"'\"\"'"),
    ("triple-crlf-kept-inside", 'SYSTEM """a\r\nb"""\r\n', "a\r\nb"),
    ("triple-tab-inside", 'SYSTEM """\ta\t"""', "\ta\t"),
    ("unicode", "SYSTEM héllo 日本 😀", "héllo 日本 😀"),
    ("non-printable-kept", "SYSTEM a\u200db\u00a0c", "a\u200db\u00a0c"),
]


@pytest.mark.parametrize(("line", "expected"), [row[1:] for row in QUOTING], ids=[row[0] for row in QUOTING])
def test_quoting(line: str, expected: str) -> None:
    assert parse_modelfile(f"FROM m\n{line}").system == expected


def test_quoted_stop_parameter() -> None:
    text = 'FROM m\nPARAMETER stop """### User:\n"""\nPARAMETER stop "<|eot_id|>"\nPARAMETER stop </s>'
    assert parse_modelfile(text).parameters == {"stop": ["### User:\n", "<|eot_id|>", "</s>"]}


def test_quoted_message_spans_lines() -> None:
    parsed = parse_modelfile('FROM m\nMESSAGE system """\nYou are a parser.\n"""\nMESSAGE user Hey')
    assert parsed.messages == [("system", "\nYou are a parser.\n"), ("user", "Hey")]


# --- encodings ---------------------------------------------------------------------------------------------------

SAMPLE = "FROM bob\nPARAMETER num_ctx 4096\nSYSTEM You are a utf16 file. ☃\n"
ENCODINGS = [
    ("utf8", SAMPLE.encode("utf-8")),
    ("utf8-bom", b"\xef\xbb\xbf" + SAMPLE.encode("utf-8")),
    ("utf16-le-bom", b"\xff\xfe" + SAMPLE.encode("utf-16-le")),
    ("utf16-be-bom", b"\xfe\xff" + SAMPLE.encode("utf-16-be")),
    ("str", SAMPLE),
    ("str-with-bom", "\ufeff" + SAMPLE),
]


@pytest.mark.parametrize("data", [row[1] for row in ENCODINGS], ids=[row[0] for row in ENCODINGS])
def test_encodings(data: str | bytes) -> None:
    parsed = parse_modelfile(data)
    assert (parsed.from_, parsed.parameters, parsed.system) == ("bob", {"num_ctx": 4096}, "You are a utf16 file. ☃")


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert parse_modelfile(b"FROM m\nSYSTEM a\xffb").system == "a\ufffdb"


# --- errors ------------------------------------------------------------------------------------------------------

SYNTAX_ERRORS = [
    ("unknown-command", "\nFROM foo\nBADCOMMAND param1 value1\n", ERR_COMMAND, 3, "BADCOMMAND"),
    ("keyword-then-newline", "FROM foo\nSYSTEM\nhello", ERR_COMMAND, 2, "SYSTEM"),
    ("digit-in-keyword", "FR0M foo", ERR_COMMAND, 1, "FR0M"),
    ("digit-in-keyword-at-eof", "FROM m\nFR0M", ERR_COMMAND, 2, "FR0M"),
    ("keyword-with-colon", "FROM: foo", ERR_COMMAND, 1, "FROM:"),
    ("unicode-letter-in-keyword", "FRÖM foo", ERR_COMMAND, 1, "FRÖM"),
    ("leading-digit", "1 foo", ERR_COMMAND, 1, "1"),
    ("keyword-at-eof", "FROM m\nSYSTEM", "unexpected EOF", 2, "SYSTEM"),
    ("unknown-keyword-at-eof", "FROM m\nBLAH", "unexpected EOF", 2, "BLAH"),
    ("parameter-without-value", "\nFROM foo\nPARAMETER param1\n", "unexpected EOF: param1", 3, "param1"),
    ("parameter-name-at-eof", "FROM foo\nPARAMETER param1", "unexpected EOF", 2, "param1"),
    ("parameter-name-with-dash", "FROM foo\nPARAMETER top-k 1", "unexpected EOF: top", 2, "top"),
    ("parameter-then-newline", "FROM foo\nPARAMETER \n", "unexpected EOF: ", 2, ""),
    ("message-without-text", "FROM foo\nMESSAGE system\n", "unexpected EOF: system", 2, "system"),
    ("message-role-at-eof", "FROM foo\nMESSAGE system", "unexpected EOF", 2, "system"),
    ("message-role-with-colon", "FROM foo\nMESSAGE user: hi", "unexpected EOF: user", 2, "user"),
    ("message-bad-role", "\nFROM foo\nMESSAGE badguy I'm a bad guy!\n", ERR_ROLE, 3, "badguy"),
    ("message-empty-role", "FROM foo\nMESSAGE  user hi", ERR_ROLE, 2, ""),
    (
        "unclosed-triple",
        'FROM foo\nSYSTEM """This is a multiline system.""\n',
        "unexpected EOF",
        2,
        '"""This is a multiline system.""',
    ),
    ("unclosed-double", 'FROM foo\nSYSTEM "\n\t\t\t', "unexpected EOF", 2, '"'),
    ("text-after-closing-quote", 'FROM foo\nSYSTEM "a" b\nFROM c\n', "unexpected EOF", 2, '"a" b'),
    ("four-quotes", 'FROM foo\n\nTEMPLATE """"\n', "unexpected EOF", 3, '""""'),
    ("crlf-counts-once", "FROM foo\r\n\r\nBAD x\r\n", ERR_COMMAND, 3, "BAD"),
    ("cr-counts-once", "FROM foo\r\rMESSAGE bad x", ERR_ROLE, 3, "bad"),
]


@pytest.mark.parametrize(
    ("text", "message", "line", "offending"), [row[1:] for row in SYNTAX_ERRORS], ids=[row[0] for row in SYNTAX_ERRORS]
)
def test_syntax_errors(text: str, message: str, line: int, offending: str) -> None:
    error = parse_error(text)
    assert (error.line, error.text) == (line, offending)
    assert error.message.startswith(f"(line {line}): {message}")
    assert error.status_code == 400


@pytest.mark.parametrize("text", ["", "   \n\n", "# only a comment", "PARAMETER top_k 1", "SYSTEM s\nTEMPLATE t"])
def test_no_from_line(text: str) -> None:
    error = parse_error(text)
    assert (error.message, error.line) == ("no FROM line", 0)


def test_syntax_error_wins_over_missing_from() -> None:
    assert parse_error("SYSTEM s\nBAD x").line == 2


def test_missing_from_wins_over_bad_parameter() -> None:
    assert parse_error("PARAMETER foo 1").message == "no FROM line"


VALUE_ERRORS = [
    ("unknown-parameter", "FROM m\nPARAMETER foo 1", "(line 2): unknown parameter 'foo'", 2, "foo"),
    (
        "deprecated-upstream-but-unknown",
        "FROM m\n\nPARAMETER num_gqa 8",
        "(line 3): unknown parameter 'num_gqa'",
        3,
        "num_gqa",
    ),
    ("bad-int", "FROM m\nPARAMETER num_ctx 4k", "(line 2): invalid int value [4k]: 'num_ctx'", 2, "num_ctx"),
    ("bad-float", "FROM m\nPARAMETER top_p high", "(line 2): invalid float value [high]: 'top_p'", 2, "top_p"),
    ("bad-bool", "FROM m\nPARAMETER numa yes", "(line 2): invalid bool value [yes]: 'numa'", 2, "numa"),
    (
        "empty-float",
        'FROM m\nPARAMETER temperature ""',
        "(line 2): invalid float value []: 'temperature'",
        2,
        "temperature",
    ),
    (
        "first-bad-value-reported",
        "FROM m\nPARAMETER top_k x\nPARAMETER foo 1",
        "(line 2): invalid int value [x]: 'top_k'",
        2,
        "top_k",
    ),
    (
        "requires-not-semver",
        "FROM m\nREQUIRES latest",
        "(line 2): requires must be a valid semver (e.g. 0.14.0): 'latest'",
        2,
        "latest",
    ),
]


@pytest.mark.parametrize(
    ("text", "message", "line", "offending"), [row[1:] for row in VALUE_ERRORS], ids=[row[0] for row in VALUE_ERRORS]
)
def test_value_errors(text: str, message: str, line: int, offending: str) -> None:
    error = parse_error(text)
    assert (error.message, error.line, error.text) == (message, line, offending)


@pytest.mark.parametrize(
    ("version", "stored"),
    [
        ("0.14.0", "0.14.0"),
        ("v0.14.0", "0.14.0"),
        ("1", "1"),
        ("1.2", "1.2"),
        ("1.2.3-rc.1+build.05", "1.2.3-rc.1+build.05"),
        ("1.2.3-alpha-1.x7", "1.2.3-alpha-1.x7"),
        ("10.20.30+meta", "10.20.30+meta"),
    ],
)
def test_requires_valid(version: str, stored: str) -> None:
    assert parse_modelfile(f"FROM m\nREQUIRES {version}").requires == stored


@pytest.mark.parametrize(
    "version",
    [
        "01.2.3",
        "1.02.3",
        "1.2.3.4",
        "1.2-rc1",
        "1.2.3-01",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-a..b",
        "vv1",
        "v",
        "x1",
        '""',
        "1.2.3 ",
    ],
)
def test_requires_invalid(version: str) -> None:
    error = parse_error(f'FROM m\nREQUIRES "{version}"' if " " in version else f"FROM m\nREQUIRES {version}")
    assert error.message.startswith("(line 2): requires must be a valid semver (e.g. 0.14.0)")


def test_deprecated_parameters_warn_and_are_dropped() -> None:
    parsed = parse_modelfile("FROM m\nPARAMETER low_vram true\nPARAMETER use_mlock nonsense\nPARAMETER mirostat 2")
    assert parsed.parameters == {"mirostat": 2}
    assert parsed.warnings == ["parameter low_vram is deprecated", "parameter use_mlock is deprecated"]


def test_seed_table_parameters_are_kept() -> None:
    text = "FROM m\n" + "\n".join(
        f"PARAMETER {name} {value}"
        for name, value in [("tfs_z", "1.0"), ("typical_p", "0.5"), ("mirostat", "1"), ("mirostat_tau", "5.0"),
                            ("mirostat_eta", "0.1"), ("penalize_newline", "true"), ("numa", "false")]
    )  # fmt: skip
    assert parse_modelfile(text).parameters == {
        "tfs_z": 1.0,
        "typical_p": 0.5,
        "mirostat": 1,
        "mirostat_tau": 5.0,
        "mirostat_eta": 0.1,
        "penalize_newline": True,
        "numa": False,
    }


# --- writer ------------------------------------------------------------------------------------------------------


def test_render_show_layout() -> None:
    text = render_modelfile(
        from_="/models/blobs/sha256-abc",
        template="{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}",
        system="You are SmolLM.",
        parameters={"temperature": 0.2, "stop": ["<|im_start|>", "<|im_end|>"], "num_ctx": 8192, "use_mmap": None},
        licenses=["Apache License\nVersion 2.0", "MIT"],
        messages=[("user", "Hi"), ("assistant", 'Say "hello"\n')],
        adapters=["/models/blobs/sha256-def"],
        header_for="smollm2:135m",
    )
    assert text == (
        '# Modelfile generated by "ollama show"\n'
        "# To build a new Modelfile based on this, replace FROM with:\n"
        "# FROM smollm2:135m\n"
        "\n"
        "FROM /models/blobs/sha256-abc\n"
        "ADAPTER /models/blobs/sha256-def\n"
        'TEMPLATE "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"\n'
        "SYSTEM You are SmolLM.\n"
        "PARAMETER num_ctx 8192\n"
        "PARAMETER stop <|im_start|>\n"
        "PARAMETER stop <|im_end|>\n"
        "PARAMETER temperature 0.2\n"
        'LICENSE "Apache License\nVersion 2.0"\n'
        "LICENSE MIT\n"
        "MESSAGE user Hi\n"
        'MESSAGE assistant """Say "hello"\n"""\n'
    )


def test_render_without_header_and_newer_commands() -> None:
    text = render_modelfile(
        from_="base",
        draft="./draft.gguf",
        projectors=["/blobs/proj"],
        renderer="qwen3",
        parser="qwen3",
        requires="0.14.0",
        parameters={"numa": True, "min_p": 1e-05},
    )
    assert text == (
        "FROM base\nDRAFT ./draft.gguf\nFROM /blobs/proj\nRENDERER qwen3\nPARSER qwen3\nREQUIRES 0.14.0\n"
        "PARAMETER min_p 1e-05\nPARAMETER numa true\n"
    )
    parsed = parse_modelfile(text)
    assert parsed.froms == ["base", "/blobs/proj"]
    assert (parsed.draft, parsed.renderer, parsed.parser, parsed.requires) == (
        "./draft.gguf",
        "qwen3",
        "qwen3",
        "0.14.0",
    )


WRITER_FORMS = [
    ("bare", "hello world", "hello world"),
    ("bare-with-hash-and-quotes", 'a # "b"', 'a # "b"'),
    ("empty", "", '""'),
    ("leading-space", " x", '" x"'),
    ("trailing-space", "x ", '"x "'),
    ("newline", "a\nb", '"a\nb"'),
    ("newline-and-quote", 'a\n"b"', '"""a\n"b""""'),
    ("space-and-quote", ' say "hi"', '""" say "hi""""'),
    ("leading-quote", '"quoted"', '""quoted""'),
    ("two-leading-quotes", '""x', '"""""x"""'),
    ("single-quote-char", '"', '"""""""'),
    ("leading-tab", "\tx", '"\tx"'),
    ("carriage-return", "a\rb", '"a\rb"'),
    ("quote-before-newline", 'a"\nb', '"""a"\nb"""'),
    ("triple-inside-line", 'a"""b\nc', '"""a"""b\nc"""'),
    ("trailing-nbsp", "x\u00a0", '"x\u00a0"'),
]


@pytest.mark.parametrize(("value", "written"), [row[1:] for row in WRITER_FORMS], ids=[row[0] for row in WRITER_FORMS])
def test_render_value_forms(value: str, written: str) -> None:
    text = render_modelfile(from_="m", system=value)
    assert text == f"FROM m\nSYSTEM {written}\n"
    assert parse_modelfile(text).system == value


@pytest.mark.parametrize(
    "value",
    ['a"""\nb', 'a"""  \r\nb', 'x"\ny"""\nz', '""\n"""\n'],
    ids=["triple-before-break", "triple-then-space-before-crlf", "quote-then-triple", "quotes-only"],
)
def test_render_refuses_values_no_quoting_can_carry(value: str) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        render_modelfile(from_="m", system=value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"messages": [("tool", "x")]}, "role 'tool'"),
        ({"parameters": {"num_gqa": 8}}, "not a known option"),
        ({"parameters": {"low_vram": True}}, "not a known option"),
        ({"parameters": {"num_ctx": "8192"}}, "needs a int"),
        ({"parameters": {"num_ctx": True}}, "needs a int"),
        ({"parameters": {"numa": 1}}, "needs a bool"),
        ({"parameters": {"temperature": "hot"}}, "needs a float"),
        ({"parameters": {"temperature": float("inf")}}, "cannot be written"),
        ({"parameters": {"temperature": 1e39}}, "cannot be written"),
        ({"parameters": {"temperature": 10**400}}, "cannot be written"),
        ({"parameters": {"stop": [1]}}, "list of strings"),
        ({"header_for": "a\nb"}, "single line"),
        ({"requires": "v1.0.0"}, "REQUIRES"),
        ({"requires": "latest"}, "REQUIRES"),
    ],
    ids=lambda value: str(value) if isinstance(value, str) else None,
)
def test_render_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        render_modelfile(from_="m", **kwargs)


def test_render_typed_values_round_trip() -> None:
    params = {
        "num_ctx": 1_000_000,
        "seed": -1,
        "temperature": 1,
        "top_p": 0.95,
        "min_p": 1.5e-7,
        "repeat_penalty": 1e6,
        "use_mmap": False,
        "stop": "single",
    }
    parsed = parse_modelfile(render_modelfile(from_="m", parameters=params))
    assert parsed.parameters == {**params, "stop": ["single"]}
    assert isinstance(parsed.parameters["temperature"], float)


# --- round-trip property -----------------------------------------------------------------------------------------

PIECES = [
    '"',
    '"',
    '"""',
    "\n",
    "\r\n",
    "\r",
    " ",
    "  ",
    "\t",
    "#",
    "a",
    "b c",
    "é",
    "😀",
    "日本",
    "\u00a0",
    "\u200d",
    "\\n",
    "'",
    "",
]


def representable(value: str) -> bool:
    """Independent statement of which values some quoting can carry (see the parser's closing rule)."""
    breaks = [i for i, char in enumerate(value) if char in "\r\n"]
    bare = not breaks and value == value.strip(GO_SPACE) and not value.startswith('"') and value != ""
    single = not value.startswith('""') and all(not value[:i].rstrip(GO_SPACE).endswith('"') for i in breaks)
    triple = all(not value[:i].rstrip(GO_SPACE).endswith('"""') for i in breaks)
    return bare or single or triple or value == ""


def tricky_values(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8))) for _ in range(count)]


@pytest.mark.parametrize("seed", range(8))
def test_round_trip_every_field(seed: int) -> None:
    values = tricky_values(seed, 400)
    refused = 0
    for index in range(0, len(values) - 6, 7):
        from_, template, system, stop, license_, content, adapter = values[index : index + 7]
        fields: dict[str, Any] = {
            "from_": from_,
            "template": template,
            "system": system,
            "parameters": {"stop": [stop, system], "temperature": 0.5},
            "licenses": [license_, template],
            "messages": [("user", content), ("assistant", system)],
            "adapters": [adapter],
        }
        all_representable = all(representable(v) for v in values[index : index + 7])
        try:
            text = render_modelfile(**fields, header_for="x:latest")
        except ValueError:
            assert not all_representable
            refused += 1
            continue
        assert all_representable
        parsed = parse_modelfile(text)
        assert parsed == Modelfile(
            from_=from_,
            froms=[from_],
            parameters=fields["parameters"],
            template=template,
            system=system,
            adapters=[adapter],
            licenses=[license_, template],
            messages=[("user", content), ("assistant", system)],
            instructions=parsed.instructions,
        )
    assert refused < 20  # unrepresentable values are rare; the generator must mostly exercise the happy path


@pytest.mark.parametrize("seed", range(4))
def test_render_raises_exactly_for_unrepresentable_values(seed: int) -> None:
    for value in tricky_values(100 + seed, 2000):
        # The short form of the rule, as the writer documents it.
        breaks = [i for i, char in enumerate(value) if char in "\r\n"]
        assert representable(value) == (not any(value[:i].rstrip(GO_SPACE).endswith('"""') for i in breaks))
        if representable(value):
            assert parse_modelfile(render_modelfile(from_="m", system=value)).system == value
        else:
            with pytest.raises(ValueError):
                render_modelfile(from_="m", system=value)
