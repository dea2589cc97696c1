"""The dialect-neutral events and their fold (server/service/events.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.engine import Logprob
from server.errors import InternalError
from server.prompt import ChatToolCall
from server.service.events import (
    Event,
    Finished,
    Metrics,
    ModelLoaded,
    ModelUnloaded,
    Output,
    Rendered,
    Reply,
    fold,
    reply_of,
)

FINISHED = Finished("length", Metrics(prompt_eval_count=3, eval_count=2), context=(1, 2, 3))


def logprob(token: str) -> Logprob:
    return Logprob(token, 0, -1.0, token.encode())


def test_fold_joins_outputs_in_order_and_keeps_the_end() -> None:
    first, second = ChatToolCall("a", {"x": 1}, "call_a", 0), ChatToolCall("b", {}, "call_b", 1)
    events: list[Event] = [
        Output(thinking="hm"),
        Output("Hel", "m", logprobs=(logprob("Hel"),)),
        Output("lo", tool_calls=(first,), logprobs=(logprob("lo"),)),
        Output(tool_calls=(second,)),
        FINISHED,
    ]
    reply = reply_of(events)
    assert reply == Reply("Hello", "hmm", (first, second), (logprob("Hel"), logprob("lo")), FINISHED)
    assert reply.done_reason == "length"
    assert reply.metrics == FINISHED.metrics


@pytest.mark.parametrize(
    ("event", "reason"),
    [(ModelLoaded(), "load"), (ModelUnloaded(), "unload"), (Rendered("<p>", 2), None)],
)
def test_answers_that_generate_nothing_fold_to_an_empty_reply(event: Event, reason: str | None) -> None:
    reply = reply_of([event])
    assert (reply.content, reply.thinking, reply.tool_calls, reply.logprobs) == ("", "", (), ())
    assert reply.end == event
    assert reply.done_reason == reason
    assert reply.metrics is None


def test_an_empty_sequence_has_no_end() -> None:
    assert reply_of([]) == Reply()
    assert Reply().done_reason is None


async def events(*items: Event | Exception) -> AsyncIterator[Event]:
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item


def test_fold_takes_the_first_event_and_the_rest() -> None:
    reply = asyncio.run(fold(Output("a"), events(Output("b"), FINISHED)))
    assert reply == Reply("ab", end=FINISHED)


def test_fold_propagates_an_error_from_the_stream() -> None:
    with pytest.raises(InternalError, match=r"^boom$"):
        asyncio.run(fold(Output("a"), events(Output("b"), InternalError("boom"))))


def test_events_are_immutable() -> None:
    with pytest.raises(AttributeError):
        Output("a").content = "b"  # type: ignore[misc]
