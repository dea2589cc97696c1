"""Native responses of the inference endpoints (server/streaming.py) on hand-made event sequences: NDJSON
chunks, the folded ``stream: false`` object, single-object answers, and an error after the stream began."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from server.errors import ServerBusy
from server.native_render import ChatRenderer, GenerateRenderer
from server.service.events import Event, Finished, Metrics, ModelLoaded, Output, Rendered
from server.streaming import inference_response

FINISHED = Finished("stop", Metrics(prompt_eval_count=2, eval_count=2), context=(1, 2))


class Events:
    """An event stream that may fail after its events, and notes whether it was closed."""

    def __init__(self, *items: Event | Exception) -> None:
        self.items = items
        self.closed = False

    async def stream(self) -> AsyncIterator[Event]:
        try:
            for item in self.items:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed = True


def respond(events: Events, *, stream: bool, chat: bool = False) -> tuple[Response, list[dict[str, Any]]]:
    """Run ``inference_response`` for a client that stays connected; the response and its JSON lines."""

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # never disconnects
        raise AssertionError

    async def main() -> tuple[Response, bytes]:
        request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
        render = ChatRenderer("m") if chat else GenerateRenderer("m")
        response = await inference_response(request, events.stream(), render, stream=stream)
        if isinstance(response, StreamingResponse):
            return response, b"".join([c if isinstance(c, bytes) else c.encode() async for c in response.body_iterator])
        return response, bytes(response.body)

    response, body = asyncio.run(main())
    lines = [json.loads(line) for line in body.decode().splitlines()]
    for line in lines:
        line.pop("created_at", None)
    return response, lines


def test_stream_is_one_line_per_event() -> None:
    events = Events(Output("Hel"), Output("lo"), FINISHED)
    response, lines = respond(events, stream=True)
    assert response.media_type == "application/x-ndjson"
    assert lines == [
        {"model": "m", "response": "Hel", "done": False},
        {"model": "m", "response": "lo", "done": False},
        {
            "model": "m",
            "response": "",
            "done": True,
            "done_reason": "stop",
            "context": [1, 2],
            "total_duration": 0,
            "load_duration": 0,
            "prompt_eval_count": 2,
            "prompt_eval_duration": 0,
            "eval_count": 2,
            "eval_duration": 0,
        },
    ]
    assert events.closed


def test_stream_false_is_the_folded_reply() -> None:
    _, lines = respond(Events(Output(thinking="hm"), Output("Hi", "m"), FINISHED), stream=False, chat=True)
    (body,) = lines
    assert body["message"] == {"role": "assistant", "content": "Hi", "thinking": "hmm"}
    assert (body["done"], body["done_reason"], body["eval_count"]) == (True, "stop", 2)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (ModelLoaded(), {"done": True, "done_reason": "load"}),
        (Rendered("<p>", 0), {"done": False, "_debug_info": {"rendered_template": "<p>", "image_count": 0}}),
    ],
)
def test_answers_are_one_object_even_when_streaming(event: Event, fields: dict[str, Any], stream: bool) -> None:
    events = Events(event, Output("never rendered"))
    response, lines = respond(events, stream=stream)
    assert response.media_type == "application/json; charset=utf-8"
    assert lines == [{"model": "m", "response": "", **fields}]
    assert events.closed  # the service's generator (and with it the lease) is closed at once


def test_error_after_the_stream_began_is_the_last_line() -> None:
    events = Events(Output("Hi"), ServerBusy())
    _, lines = respond(events, stream=True)
    assert lines == [
        {"model": "m", "response": "Hi", "done": False},
        {"error": "server busy, please try again.  maximum pending requests exceeded"},
    ]
    assert events.closed


def test_error_before_the_first_event_propagates() -> None:
    with pytest.raises(ServerBusy):
        respond(Events(ServerBusy()), stream=True)
