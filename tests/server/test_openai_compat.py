"""The pure /v1 <-> native conversions (server/openai_compat/), table-driven."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from server import openai_compat as compat
from server.engine import Logprob, TopLogprob
from server.errors import BadRequest, CapabilityError, InternalError, ModelNotFound, RequestCanceled, ServerBusy
from server.prompt import ChatToolCall
from server.protocol import ollama as api
from server.protocol import openai as oai
from server.protocol.base import parse_body
from server.service.events import Event, Finished, Metrics, ModelLoaded, Output, Rendered, Reply, reply_of
from server.streaming import sse_done, sse_event
from server.toolcalls import ToolCallParser

CREATED = 1733446089
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
USER = {"role": "user", "content": "Hi"}


def chat_request(**fields: Any) -> oai.ChatCompletionRequest:
    body = {"model": "m", "messages": [USER], **fields}
    return parse_body(oai.ChatCompletionRequest, json.dumps(body).encode())


def native_chat(**fields: Any) -> dict[str, Any]:
    return compat.from_chat_completion_request(chat_request(**fields)).to_wire()


def finished(reason: str = "stop", *, prompt: int = 0, evals: int = 0) -> Finished:
    return Finished(reason, Metrics(prompt_eval_count=prompt, eval_count=evals))


def tool_call(name: str = "get_weather", index: int = 0, **arguments: Any) -> ChatToolCall:
    return ChatToolCall(name=name, arguments=arguments, id=f"call_{index}", index=index)


def logprob(token: str, value: float, *top: tuple[str, float]) -> Logprob:
    alternatives = tuple(TopLogprob(t, 0, v, t.encode()) for t, v in top)
    return Logprob(token, 0, value, token.encode(), alternatives)


def wire(chunks: list[oai.ChatCompletionChunk] | list[oai.CompletionChunk]) -> list[dict[str, Any]]:
    return [json.loads(sse_event(c).removeprefix(b"data: ")) for c in chunks]


# -- chat requests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "options"),
    [
        ({}, {"temperature": 1.0, "top_p": 1.0}),
        ({"temperature": 0, "top_p": 0.5}, {"temperature": 0.0, "top_p": 0.5}),
        ({"max_tokens": 7}, {"num_predict": 7, "temperature": 1.0, "top_p": 1.0}),
        ({"max_completion_tokens": 9}, {"num_predict": 9, "temperature": 1.0, "top_p": 1.0}),
        ({"max_tokens": 7, "max_completion_tokens": 9}, {"num_predict": 9, "temperature": 1.0, "top_p": 1.0}),
        ({"stop": "END"}, {"stop": ["END"], "temperature": 1.0, "top_p": 1.0}),
        ({"stop": ["a", 1, "b"]}, {"stop": ["a", "b"], "temperature": 1.0, "top_p": 1.0}),
        ({"stop": 3}, {"temperature": 1.0, "top_p": 1.0}),
        ({"seed": 42}, {"seed": 42, "temperature": 1.0, "top_p": 1.0}),
        (
            {"frequency_penalty": 0.5, "presence_penalty": -1},
            {"frequency_penalty": 0.5, "presence_penalty": -1.0, "temperature": 1.0, "top_p": 1.0},
        ),
    ],
)
def test_chat_options(fields: dict[str, Any], options: dict[str, Any]) -> None:
    assert native_chat(**fields)["options"] == options


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        (None, None),
        ({"type": "text"}, None),
        ({"type": "json_object"}, "json"),
        ({"type": " JSON_OBJECT "}, "json"),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {"type": "object"}}},
            {"type": "object"},
        ),
        ({"type": "json_schema"}, None),
    ],
)
def test_chat_response_format(response_format: dict[str, Any] | None, expected: Any) -> None:
    assert native_chat(response_format=response_format).get("format") == expected


def test_chat_response_format_schema_of_wrong_type_is_the_native_error() -> None:
    with pytest.raises(InternalError, match=r'invalid format: "\[1\]"'):
        native_chat(response_format={"type": "json_schema", "json_schema": {"schema": [1]}})


@pytest.mark.parametrize(
    ("fields", "think"),
    [
        ({}, None),
        ({"reasoning_effort": "none"}, False),
        ({"reasoning_effort": "minimal"}, "low"),
        ({"reasoning_effort": "low"}, "low"),
        ({"reasoning_effort": "medium"}, "medium"),
        ({"reasoning_effort": "high"}, "high"),
        ({"reasoning_effort": "max"}, "max"),
        ({"reasoning_effort": "xhigh"}, "max"),
        ({"reasoning_effort": "ultra"}, "max"),
        ({"reasoning": {"effort": "high"}, "reasoning_effort": "low"}, "high"),
        ({"think": True}, True),
        ({"think": "low"}, "low"),
        ({"think": True, "reasoning_effort": "none"}, False),
    ],
)
def test_chat_reasoning(fields: dict[str, Any], think: Any) -> None:
    assert native_chat(**fields).get("think") == think


def test_chat_passes_extensions_and_logprobs() -> None:
    native = native_chat(keep_alive="5m", logprobs=True, top_logprobs=3, _debug_render_only=True, stream=True)
    assert native["keep_alive"] == "5m"
    assert native["logprobs"] is True
    assert native["top_logprobs"] == 3
    assert native["_debug_render_only"] is True
    assert native["stream"] is True
    assert native_chat(user="someone", n=1)["model"] == "m"


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("tool_choice", "tools"),
    [
        (None, [WEATHER, TIME]),
        ("auto", [WEATHER, TIME]),
        ("required", [WEATHER, TIME]),
        ("none", None),
        ({"type": "function", "function": {"name": "get_time"}}, [TIME]),
    ],
)
def test_chat_tool_choice(tool_choice: Any, tools: list[dict[str, Any]] | None) -> None:
    assert native_chat(tools=[WEATHER, TIME], tool_choice=tool_choice).get("tools") == tools


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"messages": []}, "[] is too short - 'messages'"),
        ({"n": 2}, "invalid value for 'n': 2 (only one choice per request is supported)"),
        ({"n": 0}, "invalid value for 'n': 0 (only one choice per request is supported)"),
        ({"reasoning_effort": "huge"}, 'invalid reasoning value: "huge" (must be "minimal", "low", "medium", '),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "invalid value for 'tool_choice': \"sometimes\""),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "invalid value for 'tool_choice': no tool named 'nope' in 'tools'",
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {}}},
            "invalid value for 'tool_choice': the function needs a name",
        ),
        ({"messages": [{"role": "user", "content": 3}]}, "invalid message content type: float64"),
        ({"messages": [{"role": "user"}]}, "invalid message content type: <nil>"),
        (
            {"messages": [{"role": "user", "content": {"a": 1}}]},
            "invalid message content type: map[string]interface {}",
        ),
        ({"messages": [{"role": "user", "content": ["text"]}]}, "invalid message format"),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "invalid message format"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "invalid message format"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "invalid message format",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "https://x/y.png"}]}]},
            "image URLs are not currently supported, please use base64 encoded data instead",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]},
            "image URLs are not currently supported, please use base64 encoded data instead",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": "data:image/gif;base64,AA"}]}
                ]
            },
            "invalid image input",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": "data:image/png;base64,!!"}]}
                ]
            },
            "invalid image input",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "invalid input_audio format"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "invalid input_audio format: missing data",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{not json"}}],
                    }
                ]
            },
            "invalid tool call arguments",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]},
            "invalid tool call arguments",
        ),
    ],
)
def test_chat_request_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as info:
        native_chat(**fields)
    assert info.value.message.startswith(message)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("messages", "native"),
    [
        ([USER], [{"role": "user", "content": "Hi"}]),
        (
            [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        {"type": "image_url", "image_url": f"data:;base64,{PNG}"},
                    ],
                }
            ],
            [
                {"role": "user", "content": "What is this?"},
                {"role": "user", "content": "", "images": [PNG]},
                {"role": "user", "content": "", "images": [PNG]},
            ],
        ),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": PNG, "format": "wav"}}]}],
            [{"role": "user", "content": "", "images": [PNG]}],
        ),
        ([{"role": "user", "content": []}], []),
        (
            [
                {"role": "system", "content": "Be brief."},
                USER,
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning": "Need weather.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris","days":2}'},
                        },
                        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "call_2", "name": "clock", "content": "noon"},
                {"role": "tool", "tool_call_id": "call_9", "content": "?"},
            ],
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "content": "",
                    "thinking": "Need weather.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}},
                        },
                        {"id": "call_2", "function": {"name": "get_time", "arguments": {}}},
                    ],
                },
                {"role": "tool", "content": "sunny", "tool_name": "get_weather", "tool_call_id": "call_1"},
                {"role": "tool", "content": "noon", "tool_name": "clock", "tool_call_id": "call_2"},
                {"role": "tool", "content": "?", "tool_call_id": "call_9"},
            ],
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "Checking."}],
                    "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {"x": 1}}}],
                },
                {"role": "Tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "42"}]},
            ],
            [
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {"x": 1}}}],
                },
                {"role": "Tool", "content": "42", "tool_name": "f", "tool_call_id": "c1"},
            ],
        ),
        (
            [{"role": "assistant", "content": [], "tool_calls": [{"function": {"name": "f", "arguments": "null"}}]}],
            [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}],
        ),
    ],
)
def test_chat_messages(messages: list[dict[str, Any]], native: list[dict[str, Any]]) -> None:
    assert native_chat(messages=messages)["messages"] == native


def test_request_model_ignores_unknown_fields_the_sdk_sends() -> None:
    req = chat_request(
        logit_bias={"1": 2},
        parallel_tool_calls=True,
        metadata={"a": "b"},
        store=False,
        service_tier="auto",
        modalities=["text"],
        stream_options={"include_usage": True, "include_obfuscation": False},
    )
    assert req.stream_options is not None and req.stream_options.include_usage


# -- chat responses ------------------------------------------------------------------------------------------


def chat_completion(*events: Event) -> dict[str, Any]:
    completion = compat.to_chat_completion(reply_of(events), model="m", id="chatcmpl-7", created=CREATED)
    wire_form: dict[str, Any] = json.loads(sse_event(completion).removeprefix(b"data: "))
    return wire_form


CALL_WIRE = {
    "id": "call_0",
    "index": 0,
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
}


@pytest.mark.parametrize(
    ("events", "message", "finish_reason"),
    [
        ([Output("H"), Output("i"), finished(prompt=26, evals=5)], {"role": "assistant", "content": "Hi"}, "stop"),
        (
            [Output(thinking="hm"), Output("Hi", "m"), finished("length", prompt=26, evals=5)],
            {"role": "assistant", "content": "Hi", "reasoning": "hmm"},
            "length",
        ),
        (
            [Output(tool_calls=(tool_call(city="Paris"),)), finished(prompt=26, evals=5)],
            {"role": "assistant", "content": "", "tool_calls": [CALL_WIRE]},
            "tool_calls",
        ),
        (
            [Output(tool_calls=(tool_call(q="<b>"),)), finished("length", prompt=26, evals=5)],
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {**CALL_WIRE, "function": {"name": "get_weather", "arguments": '{"q":"\\u003cb\\u003e"}'}}
                ],
            },
            "length",
        ),
    ],
)
def test_to_chat_completion(events: list[Event], message: dict[str, Any], finish_reason: str | None) -> None:
    assert chat_completion(*events) == {
        "id": "chatcmpl-7",
        "object": "chat.completion",
        "created": CREATED,
        "model": "m",
        "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 26, "completion_tokens": 5, "total_tokens": 31},
    }


@pytest.mark.parametrize(
    ("event", "finish_reason", "debug"),
    [
        (ModelLoaded(), "load", None),
        (Rendered("<p>", 0), None, {"rendered_template": "<p>", "image_count": 0}),
    ],
)
def test_to_chat_completion_of_answers_that_generate_nothing(
    event: Event, finish_reason: str | None, debug: dict[str, Any] | None
) -> None:
    completion = chat_completion(event)
    assert completion["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": finish_reason}
    ]
    assert completion["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert completion.get("_debug_info") == debug


def test_to_chat_completion_logprobs() -> None:
    events = [Output("Hi", logprobs=(logprob("Hi", -0.5, ("Hi", -0.5)),)), finished()]
    (choice,) = chat_completion(*events)["choices"]
    assert choice["logprobs"] == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.5,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}],
            }
        ]
    }


def test_usage_counts_zero_when_metrics_are_missing() -> None:
    assert compat.to_usage(None).to_wire() == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def delta_stream(events: list[Event], *, include_usage: bool = False) -> list[dict[str, Any]]:
    stream = compat.ChatCompletionStream(model="m", id="chatcmpl-1", created=CREATED, include_usage=include_usage)
    chunks = wire([chunk for event in events for chunk in stream.feed(event)])
    for chunk in chunks:
        assert chunk["id"] == "chatcmpl-1"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == CREATED
        assert chunk["model"] == "m"
        assert chunk["system_fingerprint"] == "fp_ollama"
    return [
        {"choices": chunk["choices"], **({"usage": chunk["usage"]} if "usage" in chunk else {})} for chunk in chunks
    ]


def choice(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, **extra}]}


FINAL = finished(prompt=10, evals=3)
ZERO_USAGE = {"choices": [], "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


@pytest.mark.parametrize(
    ("events", "include_usage", "expected"),
    [
        (
            [Output("Hel"), Output("lo"), FINAL],
            False,
            [choice({"role": "assistant", "content": "Hel"}), choice({"content": "lo"}), choice({}, "stop")],
        ),
        (
            [Output("Hi"), FINAL],
            True,
            [
                choice({"role": "assistant", "content": "Hi"}),
                choice({}, "stop"),
                {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}},
            ],
        ),
        (
            # An empty completion still opens with the role.
            [FINAL],
            False,
            [choice({"role": "assistant", "content": ""}), choice({}, "stop")],
        ),
        (
            [Output(tool_calls=(tool_call(city="Paris"),)), FINAL],
            False,
            [choice({"role": "assistant", "content": "", "tool_calls": [CALL_WIRE]}), choice({}, "tool_calls")],
        ),
        (
            [Output(tool_calls=(tool_call(city="Paris"),)), finished("length")],
            False,
            [choice({"role": "assistant", "content": "", "tool_calls": [CALL_WIRE]}), choice({}, "length")],
        ),
        (
            # Thinking and content in one event: a reasoning chunk, then a content chunk.
            [Output(thinking="hmm"), Output("ok", "."), FINAL],
            False,
            [
                choice({"role": "assistant", "content": "", "reasoning": "hmm"}),
                choice({"reasoning": "."}),
                choice({"content": "ok"}),
                choice({}, "stop"),
            ],
        ),
        (
            # A load answer: the role chunk, the finish chunk with the reason, zero usage.
            [ModelLoaded()],
            True,
            [choice({"role": "assistant", "content": ""}), choice({}, "load"), ZERO_USAGE],
        ),
        (
            # A debug render: the role chunk only (the caller ends the stream).
            [Rendered("<p>", 0)],
            True,
            [choice({"role": "assistant", "content": ""})],
        ),
    ],
)
def test_chat_completion_stream(events: list[Event], include_usage: bool, expected: list[dict[str, Any]]) -> None:
    assert delta_stream(events, include_usage=include_usage) == expected


def test_chat_stream_carries_logprobs_on_the_content_chunk() -> None:
    chunks = delta_stream([Output("a", logprobs=(logprob("a", -1.0),)), Output("b"), FINAL])
    assert chunks[0] == choice(
        {"role": "assistant", "content": "a"}, logprobs={"content": [{"token": "a", "logprob": -1, "bytes": [97]}]}
    )
    assert chunks[1] == choice({"content": "b"})


def test_parsed_tool_calls_become_openai_tool_calls() -> None:
    """Deterministic stand-in for a model that calls a tool: the native parser's calls, converted."""
    parser = ToolCallParser("<tool_call>", ["get_weather"])
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    content, calls = parser.feed(text)
    rest, more = parser.flush()
    (out,) = chat_completion(Output(content + rest, tool_calls=(*calls, *more)), finished())["choices"]
    assert out["finish_reason"] == "tool_calls"
    (call,) = out["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


# -- completions ---------------------------------------------------------------------------------------------


def completion_request(**fields: Any) -> oai.CompletionRequest:
    return parse_body(oai.CompletionRequest, json.dumps({"model": "m", "prompt": "Once", **fields}).encode())


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {},
            {
                "prompt": "Once",
                "options": {"temperature": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0, "top_p": 1.0},
            },
        ),
        (
            {"prompt": ["Twice"], "temperature": 0, "top_p": 0, "max_tokens": 4, "seed": 1, "stop": ["\n"]},
            {
                "prompt": "Twice",
                "options": {
                    "stop": ["\n"],
                    "num_predict": 4,
                    "temperature": 0.0,
                    "seed": 1,
                    "frequency_penalty": 0.0,
                    "presence_penalty": 0.0,
                    "top_p": 1.0,
                },
            },
        ),
        (
            {"suffix": "end", "stop": "x", "top_p": 0.3, "presence_penalty": 1, "logprobs": 2, "keep_alive": 0},
            {
                "prompt": "Once",
                "suffix": "end",
                "keep_alive": 0,
                "logprobs": True,
                "top_logprobs": 2,
                "options": {
                    "stop": ["x"],
                    "temperature": 1.0,
                    "frequency_penalty": 0.0,
                    "presence_penalty": 1.0,
                    "top_p": 0.3,
                },
            },
        ),
    ],
)
def test_completion_request(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    native = compat.from_completion_request(completion_request(**fields)).to_wire()
    expected = {"logprobs": False, "top_logprobs": 0, "suffix": "", **expected}
    assert {key: native.get(key) for key in expected} == expected
    assert native["model"] == "m"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stop": ["a", 1]}, "invalid type for 'stop' field: float64"),
        ({"stop": ["a", None]}, "invalid type for 'stop' field: <nil>"),
        ({"prompt": ["a", "b"]}, "invalid prompt: only one prompt per request is supported"),
        ({"prompt": [1, 2]}, "invalid prompt: token arrays are not supported, send the prompt as a string"),
        ({"prompt": 5}, "json: cannot unmarshal number into Go struct field CompletionRequest.prompt of type string"),
        ({"n": 3}, "invalid value for 'n': 3 (only one choice per request is supported)"),
    ],
)
def test_completion_request_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        compat.from_completion_request(completion_request(**fields))


def test_to_completion_with_echo_and_logprobs() -> None:
    events = [
        Output(" upon", logprobs=(logprob(" upon", -0.25, (" upon", -0.25)),)),
        Output(" a", thinking="not shown", logprobs=(logprob(" a", -0.5),)),
        finished("length", prompt=2, evals=2),
    ]
    completion = compat.to_completion(reply_of(events), model="m", id="cmpl-1", created=CREATED, echo="Once")
    assert completion.to_wire() == {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": CREATED,
        "model": "m",
        "system_fingerprint": "fp_ollama",
        "choices": [
            {
                "text": "Once upon a",
                "index": 0,
                "finish_reason": "length",
                "logprobs": {
                    "tokens": [" upon", " a"],
                    "token_logprobs": [-0.25, -0.5],
                    "top_logprobs": [{" upon": -0.25}, {}],
                    "text_offset": [4, 9],
                },
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4},
    }


def test_to_completion_of_a_debug_render() -> None:
    completion = compat.to_completion(Reply(end=Rendered("<p>", 1)), model="m", id="cmpl-1", created=CREATED)
    assert completion.to_wire()["choices"] == [{"text": "", "index": 0, "finish_reason": None}]
    assert completion.to_wire()["_debug_info"] == {"rendered_template": "<p>", "image_count": 1}


def completion_stream(events: list[Event], *, include_usage: bool, echo: str = "") -> list[dict[str, Any]]:
    stream = compat.CompletionStream(model="m", id="cmpl-2", created=CREATED, include_usage=include_usage, echo=echo)
    chunks = wire([chunk for event in events for chunk in stream.feed(event)])
    assert {(e["id"], e["object"], e["created"], e["model"]) for e in chunks} == {
        ("cmpl-2", "text_completion", CREATED, "m")
    }
    return [{k: v for k, v in e.items() if k in ("choices", "usage")} for e in chunks]


@pytest.mark.parametrize("include_usage", [False, True])
def test_completion_stream(include_usage: bool) -> None:
    events: list[Event] = [
        Output(" upon", logprobs=(logprob(" upon", -0.25),)),
        Output(" a", logprobs=(logprob(" a", -0.5),)),
        finished(prompt=2, evals=2),
    ]
    zero = {"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}} if include_usage else {}

    def logprobs(token: str, value: float, offset: int) -> dict[str, Any]:
        return {"tokens": [token], "token_logprobs": [value], "top_logprobs": [{}], "text_offset": [offset]}

    expected = [
        {
            "choices": [
                {"text": "Once upon", "index": 0, "finish_reason": None, "logprobs": logprobs(" upon", -0.25, 4)}
            ]
        },
        {"choices": [{"text": " a", "index": 0, "finish_reason": None, "logprobs": logprobs(" a", -0.5, 9)}]},
        {"choices": [{"text": "", "index": 0, "finish_reason": "stop"}]},
    ]
    expected = [{**e, **zero} for e in expected]
    if include_usage:
        expected.append({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}})
    assert completion_stream(events, include_usage=include_usage, echo="Once") == expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ModelLoaded(), [{"text": "Once", "index": 0, "finish_reason": "load"}]),
        (Rendered("<p>", 0), [{"text": "Once", "index": 0, "finish_reason": None}]),
    ],
)
def test_completion_stream_of_answers_that_generate_nothing(event: Event, expected: list[dict[str, Any]]) -> None:
    # No usage chunk after a debug render: it does not end the stream with a reason.
    chunks = completion_stream([event], include_usage=True, echo="Once")
    assert [c["choices"] for c in chunks if c["choices"]] == [expected]
    assert len(chunks) == (1 if isinstance(event, Rendered) else 2)


# -- embeddings ----------------------------------------------------------------------------------------------


def embedding_request(**fields: Any) -> oai.EmbeddingRequest:
    return parse_body(oai.EmbeddingRequest, json.dumps({"model": "m", **fields}).encode())


@pytest.mark.parametrize(
    ("fields", "native"),
    [
        ({"input": "hi"}, {"model": "m", "input": "hi"}),
        ({"input": ""}, {"model": "m", "input": [""]}),
        ({"input": ["a", "b"], "dimensions": 8}, {"model": "m", "input": ["a", "b"], "dimensions": 8}),
        ({"input": "a", "dimensions": 0, "encoding_format": "BASE64"}, {"model": "m", "input": "a"}),
        (
            {"input": "a", "encoding_format": "float", "keep_alive": "1m"},
            {"model": "m", "input": "a", "keep_alive": "1m"},
        ),
    ],
)
def test_embedding_request(fields: dict[str, Any], native: dict[str, Any]) -> None:
    assert compat.from_embedding_request(embedding_request(**fields)).to_wire() == native


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "invalid input"),
        ({"input": None}, "invalid input"),
        ({"input": []}, "invalid input"),
        (
            {"input": "a", "encoding_format": "int8"},
            "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].",
        ),
    ],
)
def test_embedding_request_errors(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest) as info:
        compat.from_embedding_request(embedding_request(**fields))
    assert info.value.message == message


@pytest.mark.parametrize("encoding_format", ["", "float", "base64", "Base64"])
def test_to_embedding_list(encoding_format: str) -> None:
    vectors = [[0.5, -0.25, 0.125], [1.0, 0.0, 0.1]]
    native = api.EmbedResponse(model="m", embeddings=vectors, prompt_eval_count=4)
    out = compat.to_embedding_list(native, model="M", encoding_format=encoding_format).to_wire()
    assert out["object"] == "list"
    assert out["model"] == "M"
    assert out["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert [(d["object"], d["index"]) for d in out["data"]] == [("embedding", 0), ("embedding", 1)]
    for item, vector in zip(out["data"], vectors, strict=True):
        if encoding_format.lower() == "base64":
            raw = base64.b64decode(item["embedding"])
            assert raw == struct.pack("<3f", *vector)
            assert list(struct.unpack("<3f", raw)) == pytest.approx(vector)
        else:
            assert item["embedding"] == vector


# -- models --------------------------------------------------------------------------------------------------


def list_model(name: str) -> api.ListModel:
    return api.ListModel(
        name=name,
        model=name,
        modified_at="2025-05-10T08:06:48.639712648-07:00"[:26] + "-07:00",
        size=1,
        digest="d",
        details=api.ModelDetails(),
    )


def test_models() -> None:
    natives = api.ListResponse(models=[list_model("smollm2:135m"), list_model("hf.co/bartowski/Some-GGUF:Q4_K_M")])
    created = 1746889608
    assert compat.to_model_list(natives).to_wire() == {
        "object": "list",
        "data": [
            {"id": "smollm2:135m", "object": "model", "created": created, "owned_by": "library"},
            {"id": "hf.co/bartowski/Some-GGUF:Q4_K_M", "object": "model", "created": created, "owned_by": "bartowski"},
        ],
    }
    assert compat.to_model_list(api.ListResponse(models=[])).to_wire() == {"object": "list", "data": None}
    assert compat.to_model("me/x", "2024-12-06T00:48:09Z").to_wire() == {
        "id": "me/x",
        "object": "model",
        "created": CREATED,
        "owned_by": "me",
    }


# -- errors and framing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (BadRequest("bad"), "invalid_request_error"),
        (CapabilityError('"m" does not support vision'), "invalid_request_error"),
        (ModelNotFound("model 'x' not found"), "not_found_error"),
        (ServerBusy(), "api_error"),
        (RequestCanceled(), "api_error"),
        (InternalError("boom"), "api_error"),
    ],
)
def test_errors(error: BadRequest | ModelNotFound | ServerBusy | RequestCanceled | InternalError, kind: str) -> None:
    assert compat.to_error(error).to_wire() == {
        "error": {"message": error.message, "type": kind, "param": None, "code": None}
    }


def test_sse_framing() -> None:
    assert sse_event({"a": "<"}) == b'data: {"a":"\\u003c"}\n\n'
    assert sse_done() == b"data: [DONE]\n\n"


def test_ids() -> None:
    for _ in range(20):
        assert 0 <= int(compat.chat_completion_id().removeprefix("chatcmpl-")) <= 998
        assert 0 <= int(compat.completion_id().removeprefix("cmpl-")) <= 998
