"""The native renderer (server/native_render.py): hand-made events as /api/generate and /api/chat objects."""

from __future__ import annotations

import re
from typing import Any

import pytest

from server.engine import Logprob, TopLogprob
from server.native_render import ChatRenderer, GenerateRenderer
from server.prompt import ChatToolCall
from server.service.events import Event, Finished, Metrics, ModelLoaded, ModelUnloaded, Output, Rendered, reply_of

METRICS = Metrics(
    prompt_eval_count=5, prompt_eval_duration=6, eval_count=2, eval_duration=7, total_duration=9, load_duration=1
)
METRIC_FIELDS = {
    "total_duration": 9,
    "load_duration": 1,
    "prompt_eval_count": 5,
    "prompt_eval_duration": 6,
    "eval_count": 2,
    "eval_duration": 7,
}
LOGPROB = Logprob("Hi", 3, -0.5, b"Hi", (TopLogprob("Hi", 3, -0.5, b"Hi"), TopLogprob("Yo", 4, -1.5, b"Yo")))
LOGPROB_WIRE = {
    "token": "Hi",
    "logprob": -0.5,
    "bytes": [72, 105],
    "top_logprobs": [
        {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]},
        {"token": "Yo", "logprob": -1.5, "bytes": [89, 111]},
    ],
}
CALL = ChatToolCall("get_weather", {"city": "Paris"}, "call_1", 0)
CALL_WIRE = {"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def wire(item: Any) -> dict[str, Any]:
    """The object as sent, with its ``created_at`` checked and left out."""
    out: dict[str, Any] = item.to_wire()
    assert list(out)[:2] == ["model", "created_at"]
    assert RFC3339_UTC.match(out.pop("created_at"))
    return out


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (Output("Hi"), {"response": "Hi", "done": False}),
        (Output("", "hmm"), {"response": "", "thinking": "hmm", "done": False}),
        (Output("Hi", logprobs=(LOGPROB,)), {"response": "Hi", "done": False, "logprobs": [LOGPROB_WIRE]}),
        (
            Finished("stop", METRICS, context=(1, 2)),
            {"response": "", "done": True, "done_reason": "stop", "context": [1, 2], **METRIC_FIELDS},
        ),
        (
            Finished("length", METRICS),  # raw mode: no context
            {"response": "", "done": True, "done_reason": "length", **METRIC_FIELDS},
        ),
        (ModelLoaded(), {"response": "", "done": True, "done_reason": "load"}),
        (ModelUnloaded(), {"response": "", "done": True, "done_reason": "unload"}),
        (
            Rendered("<p>", 1),
            {"response": "", "done": False, "_debug_info": {"rendered_template": "<p>", "image_count": 1}},
        ),
    ],
)
def test_generate_chunks(event: Event, expected: dict[str, Any]) -> None:
    out = wire(GenerateRenderer("smollm2").chunk(event))
    assert out == {"model": "smollm2", **expected}
    assert list(out) == ["model", *expected]  # Ollama's field order


def test_generate_whole_reply_joins_the_output() -> None:
    events: list[Event] = [
        Output(thinking="hm"),
        Output("H", "m", logprobs=(LOGPROB,)),
        Output("i", logprobs=(LOGPROB,)),
        Finished("stop", METRICS, context=(1,)),
    ]
    assert wire(GenerateRenderer("m").whole(reply_of(events))) == {
        "model": "m",
        "response": "Hi",
        "thinking": "hmm",
        "done": True,
        "done_reason": "stop",
        "context": [1],
        **METRIC_FIELDS,
        "logprobs": [LOGPROB_WIRE, LOGPROB_WIRE],
    }


ASSISTANT = {"role": "assistant", "content": ""}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (Output("Hi"), {"message": {**ASSISTANT, "content": "Hi"}, "done": False}),
        (Output(thinking="hmm"), {"message": {**ASSISTANT, "thinking": "hmm"}, "done": False}),
        (Output(tool_calls=(CALL,)), {"message": {**ASSISTANT, "tool_calls": [CALL_WIRE]}, "done": False}),
        (
            Output("Hi", logprobs=(LOGPROB,)),
            {"message": {**ASSISTANT, "content": "Hi"}, "done": False, "logprobs": [LOGPROB_WIRE]},
        ),
        (Finished("stop", METRICS), {"message": ASSISTANT, "done": True, "done_reason": "stop", **METRIC_FIELDS}),
        (ModelLoaded(), {"message": ASSISTANT, "done": True, "done_reason": "load"}),
        (ModelUnloaded(), {"message": ASSISTANT, "done": True, "done_reason": "unload"}),
        (
            Rendered("<p>", 0),
            {"message": ASSISTANT, "done": False, "_debug_info": {"rendered_template": "<p>", "image_count": 0}},
        ),
    ],
)
def test_chat_chunks(event: Event, expected: dict[str, Any]) -> None:
    out = wire(ChatRenderer("smollm2").chunk(event))
    assert out == {"model": "smollm2", **expected}
    assert list(out) == ["model", *expected]


def test_chat_whole_reply_joins_the_output() -> None:
    events: list[Event] = [
        Output(thinking="hm"),
        Output("Hi", "m", logprobs=(LOGPROB,)),
        Output(tool_calls=(CALL,)),
        Finished("stop", METRICS),
    ]
    assert wire(ChatRenderer("m").whole(reply_of(events))) == {
        "model": "m",
        "message": {"role": "assistant", "content": "Hi", "thinking": "hmm", "tool_calls": [CALL_WIRE]},
        "done": True,
        "done_reason": "stop",
        **METRIC_FIELDS,
        "logprobs": [LOGPROB_WIRE],
    }
