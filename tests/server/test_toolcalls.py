"""Tool-call extraction from model output (``server.toolcalls``): table-driven cases, each checked whole and in
chunks split at every position, since a stream may cut the output anywhere (inside the tag included)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.gotemplate import Template
from server.prompt import ChatToolCall
from server.store.modelfile import parse_modelfile
from server.toolcalls import ToolCallParser, new_call_id, parse_tool_calls, tool_names

NAMES = ["get_weather", "get_time"]
TAG = "<tool_call>"


def counter_ids() -> Callable[[], str]:
    numbers = itertools.count()
    return lambda: f"call_{next(numbers):08d}"


def call(name: str, arguments: dict[str, object], index: int) -> ChatToolCall:
    return ChatToolCall(name=name, arguments=arguments, id=f"call_{index:08d}", index=index)


WEATHER = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TIME = '{"name": "get_time", "arguments": {"zone": "CET"}}'

CASES = [
    pytest.param(
        TAG, f"<tool_call>\n{WEATHER}\n</tool_call>", "", [call("get_weather", {"city": "Paris"}, 0)], id="one"
    ),
    pytest.param(
        TAG,
        f"<tool_call>\n{WEATHER}\n</tool_call>\n<tool_call>\n{TIME}\n</tool_call>",
        "",
        [call("get_weather", {"city": "Paris"}, 0), call("get_time", {"zone": "CET"}, 1)],
        id="two",
    ),
    pytest.param(
        TAG,
        f"Let me check that.\n<tool_call>\n{WEATHER}\n</tool_call>",
        "Let me check that.\n",
        [call("get_weather", {"city": "Paris"}, 0)],
        id="content-before-tag",
    ),
    pytest.param(TAG, "Paris is sunny, <b>22</b> degrees.", "Paris is sunny, <b>22</b> degrees.", [], id="no-tag"),
    pytest.param(TAG, "It ends with <tool", "It ends with <tool", [], id="partial-tag-at-end"),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_stock", "arguments": {"symbol": "X"}}\n</tool_call>',
        '<tool_call>\n{"name": "get_stock", "arguments": {"symbol": "X"}}\n</tool_call>',
        [],
        id="unknown-tool",
    ),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}\n</tool_call>',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}\n</tool_call>',
        [],
        id="malformed-json-unclosed",
    ),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_weather", "arguments": {city: Paris}}\n</tool_call>',
        '<tool_call>\n{"name": "get_weather", "arguments": {city: Paris}}\n</tool_call>',
        [],
        id="malformed-json-invalid",
    ),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_weather"}\n</tool_call>',
        '<tool_call>\n{"name": "get_weather"}\n</tool_call>',
        [],
        id="arguments-missing",
    ),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_weather", "arguments": ["Paris"]}\n</tool_call>',
        '<tool_call>\n{"name": "get_weather", "arguments": ["Paris"]}\n</tool_call>',
        [],
        id="arguments-not-an-object",
    ),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_weather", "parameters": {"city": "Paris"}}\n</tool_call>',
        "",
        [call("get_weather", {"city": "Paris"}, 0)],
        id="parameters-key",
    ),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>',
        "",
        [call("get_time", {}, 0)],
        id="empty-arguments",
    ),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}\n</tool_call>',
        "",
        [call("get_weather", {"city": "Paris"}, 0)],
        id="arguments-as-json-string",
    ),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "a } or { \\" b", "n": [1, {"x": 2}]}}',
        "",
        [call("get_weather", {"city": 'a } or { " b', "n": [1, {"x": 2}]}, 0)],
        id="braces-and-quotes-in-strings",
    ),
    pytest.param(
        TAG,
        '<tool_call>\n{"name": "get_stock", "arguments": {}}\n</tool_call>\n<tool_call>\n' + TIME,
        "",
        [call("get_time", {"zone": "CET"}, 0)],
        id="unknown-then-known",
    ),
    pytest.param(
        TAG,
        '<tool_call>get_weather\n{"city": "Paris"}</tool_call>',
        "",
        [call("get_weather", {"city": "Paris"}, 0)],
        id="name-before-bare-arguments",
    ),
    pytest.param(
        TAG,
        '<tool_call>{"type": "function", "function": {"name": "get_time", "arguments": {"zone": "UTC"}}}',
        "",
        [call("get_time", {"zone": "UTC"}, 0)],
        id="nested-function-object",
    ),
    pytest.param(
        TAG,
        f"<tool_call>\n{WEATHER}\n</tool_call>\nI have asked for the weather.",
        "",
        [call("get_weather", {"city": "Paris"}, 0)],
        id="text-after-calls-dropped",
    ),
    pytest.param("{", f"{WEATHER}", "", [call("get_weather", {"city": "Paris"}, 0)], id="brace-tag"),
    pytest.param(
        "{", f"\n  {WEATHER}", "\n  ", [call("get_weather", {"city": "Paris"}, 0)], id="brace-tag-after-whitespace"
    ),
    pytest.param("{", f"Sure! {WEATHER}", f"Sure! {WEATHER}", [], id="brace-tag-abandoned-after-content"),
    pytest.param("{", '{"answer": 42} and more text', '{"answer": 42} and more text', [], id="brace-tag-plain-json"),
    pytest.param(
        "{",
        '{"get_weather": {"city": "Paris"}}',
        "",
        [call("get_weather", {"city": "Paris"}, 0)],
        id="brace-tag-name-as-key",
    ),
    pytest.param(
        "{",
        '{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_time", "parameters": {}}',
        "",
        [call("get_weather", {"city": "Paris"}, 0), call("get_time", {}, 1)],
        id="brace-tag-two-calls",
    ),
    pytest.param(
        "[",
        f"[{WEATHER}, {TIME}]",
        "",
        [call("get_weather", {"city": "Paris"}, 0), call("get_time", {"zone": "CET"}, 1)],
        id="bracket-tag",
    ),
    pytest.param("[", '[1, {"a": 2}] done', '[1, {"a": 2}] done', [], id="bracket-tag-plain-list"),
    pytest.param("[", "See [1] below", "See [1] below", [], id="bracket-tag-abandoned-after-content"),
]


def splits(text: str) -> Iterator[list[str]]:
    """The whole text, then every two-piece split, then one character at a time."""
    yield [text]
    for at in range(len(text) + 1):
        yield [text[:at], text[at:]]
    yield list(text)


@pytest.mark.parametrize(("tag", "output", "content", "calls"), CASES)
def test_parse(tag: str, output: str, content: str, calls: list[ChatToolCall]) -> None:
    for chunks in splits(output):
        parser = ToolCallParser(tag, NAMES, new_id=counter_ids())
        got_content, got_calls = "", []
        for chunk in chunks:
            step = parser.feed(chunk)
            got_content += step.content
            got_calls += step.calls
        end = parser.flush()
        assert (got_content + end.content, got_calls + end.calls) == (content, calls), chunks
        assert parser.calls_found == len(calls)


def test_parse_tool_calls_is_the_one_shot_form() -> None:
    assert parse_tool_calls(f"Hi {TAG}{WEATHER}", TAG, NAMES, new_id=counter_ids()) == (
        "Hi ",
        [call("get_weather", {"city": "Paris"}, 0)],
    )


def test_content_streams_before_the_tag_and_calls_arrive_as_objects_close() -> None:
    parser = ToolCallParser(TAG, NAMES, new_id=counter_ids())
    assert parser.feed("Checking <").content == "Checking "
    assert parser.feed("b>now</b> <tool").content == "<b>now</b> "
    step = parser.feed('_call>\n{"name": "get_weather", ')
    assert (step.content, step.calls) == ("", [])
    assert parser.feed('"arguments": {"city": "Paris"}}').calls == [call("get_weather", {"city": "Paris"}, 0)]
    assert parser.feed("\n</tool_call>").calls == []
    assert parser.flush().content == ""


def test_after_abandoning_text_passes_through() -> None:
    parser = ToolCallParser("{", NAMES)
    assert parser.feed("No.").content == "No."
    assert parser.feed(f" {WEATHER}").content == f" {WEATHER}"
    assert parser.flush().content == ""


def test_ids_are_call_and_eight_lowercase_alphanumerics() -> None:
    ids = {new_call_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("call_") and len(i) == 13 and i[5:].isalnum() and i[5:] == i[5:].lower() for i in ids)
    assert new_call_id(random.Random(7)) == new_call_id(random.Random(7))
    _, calls = parse_tool_calls(WEATHER, "{", NAMES)
    assert calls[0].id.startswith("call_") and len(calls[0].id) == 13


def test_tool_names_reads_request_tools() -> None:
    tools: list[dict[str, Any]] = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {}}},
        {"type": "function", "function": {"description": "no name"}},
        {"type": "function"},
    ]
    assert tool_names(tools) == ["get_weather"]


def test_for_template_uses_the_template_tag() -> None:
    modelfile = Path(__file__).parents[2] / "modelfiles" / "smollm2-135m.Modelfile"
    source = parse_modelfile(modelfile.read_text()).template
    assert source is not None
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    assert ToolCallParser.for_template(Template.parse(source), tools).tag == TAG
    assert ToolCallParser.for_template(Template.parse("{{ .Prompt }}"), tools).tag == "{"
    assert ToolCallParser.for_template(None, tools).tag == "{"


def test_steps_unpack_as_content_and_calls() -> None:
    parser = ToolCallParser(TAG, NAMES, new_id=counter_ids())
    content, calls = parser.feed(f"ok {TAG}{WEATHER}")
    assert (content, calls) == ("ok ", [call("get_weather", {"city": "Paris"}, 0)])
    assert tuple(parser.flush()) == ("", [])


def test_empty_names_never_match_and_the_longest_name_wins() -> None:
    assert parse_tool_calls('<tool_call>x {"a": 1}', TAG, ["", "get"]) == ('<tool_call>x {"a": 1}', [])
    _, calls = parse_tool_calls('<tool_call>get_weather_now {"a": 1}', TAG, ["get_weather", "get_weather_now"])
    assert [c.name for c in calls] == ["get_weather_now"]
