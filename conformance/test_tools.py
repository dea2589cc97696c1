"""Tool calling: ``tools`` in, ``message.tool_calls`` out, on ``/api/chat`` and ``/v1/chat/completions``.

Small models do not call tools from a bare question, so the request shows the model two earlier turns in
which the assistant answered with a tool call (few-shot); a template that supports tools then makes the next
answer a tool call, and the server must parse it out of the text (reference §6.6).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from conformance import expect
from conformance.calls import greedy, user

pytestmark = [pytest.mark.ref("1.3"), pytest.mark.needs("tools")]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather for a city",
        "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
    },
}


def _call(city: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": city}}}],
    }


FEW_SHOT = [
    user("Weather in Tokyo?"),
    _call("Tokyo"),
    user("Weather in Rome?"),
    _call("Rome"),
    user("Weather in Paris?"),
]
OPENAI_FEW_SHOT: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Tokyo?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'}}
        ],
    },
    {"role": "user", "content": "Weather in Rome?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}
        ],
    },
    {"role": "user", "content": "Weather in Paris?"},
]


def _body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": FEW_SHOT, "tools": [WEATHER_TOOL], "options": greedy(40), **fields}


@pytest.fixture(scope="module")
def native(http: httpx.Client, model: str) -> dict[str, Any]:
    resp = http.post("/api/chat", json=_body(model, stream=False))
    expect.status(resp, 200)
    body: dict[str, Any] = expect.json_body(resp)
    return body


@pytest.fixture(scope="module")
def native_calls(native: dict[str, Any]) -> list[dict[str, Any]]:
    calls = native["message"].get("tool_calls")
    expect.check(isinstance(calls, list) and bool(calls), "message.tool_calls", "a non-empty list", native["message"])
    return list(calls)


@pytest.fixture(scope="module")
def openai_body(http: httpx.Client, model: str) -> dict[str, Any]:
    body = {"model": model, "messages": OPENAI_FEW_SHOT, "tools": [WEATHER_TOOL], "temperature": 0, "seed": 1234}
    resp = http.post("/v1/chat/completions", json=body | {"max_tokens": 40})
    expect.status(resp, 200)
    result: dict[str, Any] = expect.json_body(resp)
    return result


@pytest.mark.ref("1.1")
def test_template_with_tools_reports_capability(show_info: dict[str, Any]) -> None:
    if ".Tools" not in str(show_info.get("template", "")):
        pytest.skip("the model's template does not reference .Tools")
    expect.check("tools" in (show_info.get("capabilities") or []), "capabilities", "to include 'tools'", show_info)


def test_tool_call_produced(native_calls: list[dict[str, Any]]) -> None:
    expect.fields(native_calls[0], {"function": dict}, "tool call")
    expect.equal(native_calls[0]["function"].get("name"), "get_weather", "tool call function.name")


def test_tool_call_arguments_object(native_calls: list[dict[str, Any]]) -> None:
    arguments = native_calls[0]["function"].get("arguments")
    expect.check(isinstance(arguments, dict), "function.arguments", "a JSON object (not a string)", arguments)
    expect.check("city" in arguments, "function.arguments", "the required 'city' key", arguments)


def test_tool_call_index(native_calls: list[dict[str, Any]]) -> None:
    expect.equal([c["function"].get("index") for c in native_calls], list(range(len(native_calls))), "indexes")


@pytest.mark.optional
def test_tool_call_id_format(native_calls: list[dict[str, Any]]) -> None:
    ident = native_calls[0].get("id")
    expect.check(
        isinstance(ident, str) and re.match(r"^call_[a-z0-9]{8}$", ident) is not None,
        "tool call id",
        "'call_' + 8 lowercase alphanumerics",
        ident,
    )


def test_tool_call_content_empty(native: dict[str, Any]) -> None:
    expect.equal(native["message"].get("content"), "", "message.content next to tool_calls")


def test_tool_call_done_reason(native: dict[str, Any]) -> None:
    expect.equal(native.get("done_reason"), "stop", "done_reason after a tool call")


def test_tool_call_streamed(http: httpx.Client, model: str) -> None:
    chunks = expect.ndjson(http.post("/api/chat", json=_body(model)))
    calls = [c for chunk in chunks for c in chunk.get("message", {}).get("tool_calls") or []]
    expect.check(bool(calls), "streamed tool_calls", "at least one chunk with tool_calls", chunks[-3:])
    expect.check(isinstance(calls[0]["function"].get("arguments"), dict), "arguments", "an object", calls[0])
    expect.equal(chunks[-1].get("done"), True, "last chunk done")


def test_tool_result_round_trip(http: httpx.Client, model: str, native_calls: list[dict[str, Any]]) -> None:
    messages = [
        *FEW_SHOT,
        {"role": "assistant", "content": "", "tool_calls": native_calls},
        {"role": "tool", "content": json.dumps({"temperature": 18}), "tool_name": "get_weather"},
    ]
    resp = http.post(
        "/api/chat",
        json={"model": model, "messages": messages, "tools": [WEATHER_TOOL], "stream": False, "options": greedy(8)},
    )
    expect.status(resp, 200)
    expect.fields(expect.json_body(resp)["message"], {"content": str}, "reply after the tool result")


@pytest.mark.ref("3.1")
def test_openai_finish_reason_tool_calls(openai_body: dict[str, Any]) -> None:
    expect.equal(openai_body["choices"][0].get("finish_reason"), "tool_calls", "finish_reason")


@pytest.mark.ref("3.1")
def test_openai_arguments_json_string(openai_body: dict[str, Any]) -> None:
    calls = openai_body["choices"][0]["message"].get("tool_calls") or []
    expect.check(bool(calls), "message.tool_calls", "a non-empty list", openai_body["choices"][0])
    call = calls[0]
    expect.equal(call.get("type"), "function", "tool call type")
    expect.fields(call, {"id": str, "function": dict}, "tool call")
    arguments = call["function"].get("arguments")
    expect.check(isinstance(arguments, str), "function.arguments", "a JSON string", arguments)
    expect.check(isinstance(json.loads(arguments), dict), "function.arguments", "a JSON object string", arguments)


@pytest.mark.ref("3.1")
def test_openai_stream_tool_calls(http: httpx.Client, model: str) -> None:
    body = {"model": model, "messages": OPENAI_FEW_SHOT, "tools": [WEATHER_TOOL], "temperature": 0, "seed": 1234}
    chunks = expect.sse(http.post("/v1/chat/completions", json=body | {"max_tokens": 40, "stream": True}))
    deltas = [c["choices"][0] for c in chunks if c.get("choices")]
    calls = [t for d in deltas for t in d.get("delta", {}).get("tool_calls") or []]
    expect.check(bool(calls), "streamed delta.tool_calls", "at least one", deltas[-3:])
    reasons = [d.get("finish_reason") for d in deltas if d.get("finish_reason")]
    expect.equal(reasons, ["tool_calls"], "finish_reason values in the stream")


@pytest.mark.ref("3.1")
def test_openai_tool_result_message(http: httpx.Client, model: str, openai_body: dict[str, Any]) -> None:
    calls = openai_body["choices"][0]["message"].get("tool_calls") or []
    if not calls:
        pytest.skip("no tool call to answer (see test_openai_arguments_json_string)")
    messages = [
        *OPENAI_FEW_SHOT,
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"temperature": 18}'},
    ]
    resp = http.post(
        "/v1/chat/completions", json={"model": model, "messages": messages, "max_tokens": 8, "temperature": 0}
    )
    expect.status(resp, 200)
