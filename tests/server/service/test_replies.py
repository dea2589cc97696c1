"""Engine events to dialect-neutral events (server/service/replies.py), over a real engine event stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from server.engine import Done, EventStream, Logprob, Token
from server.engine.stream import EventSink
from server.prompt import ChatToolCall
from server.service.events import Finished, Metrics, Output
from server.service.replies import ChatOutput, Timer, chat_events, generate_events
from server.thinking import ThinkingParser
from server.toolcalls import ToolCallParser

DONE = Done("stop", prompt_eval_count=4, prompt_eval_duration_ns=10, eval_count=3, eval_duration_ns=20, context=(7, 8))


def token(text: str, *logprobs: Logprob) -> Token:
    return Token(text, (1,), logprobs)


def run(
    make: Callable[[EventStream, Timer], AsyncIterator[Output | Finished]], *engine: Token | Done
) -> tuple[list[Output | Finished], Timer]:
    """Feed ``engine`` events through a real sink and stream; collect what ``make`` yields."""

    async def main() -> tuple[list[Output | Finished], Timer]:
        sink = EventSink(asyncio.get_running_loop())
        for event in engine:
            sink.put(event)
        timer = Timer.start()
        timer.mark_loaded()
        return [event async for event in make(EventStream(sink, lambda: None), timer)], timer

    return asyncio.run(main())


def without_times(metrics: Metrics) -> Metrics:
    assert metrics.total_duration > 0 and metrics.load_duration > 0
    return Metrics(metrics.prompt_eval_count, metrics.prompt_eval_duration, metrics.eval_count, metrics.eval_duration)


def test_generate_splits_thinking_and_ends_with_metrics_and_context() -> None:
    events, timer = run(
        lambda stream, timer: generate_events(stream, thinks=True, logprobs=False, raw=False, timer=timer),
        token("<think>hm"),
        token("m</think>Hi"),
        token(""),  # nothing to show: no event
        token(" there"),
        DONE,
    )
    *outputs, finished = events
    assert outputs == [Output(thinking="hm"), Output("Hi", "m"), Output(" there")]
    assert isinstance(finished, Finished)
    assert (finished.reason, finished.context) == ("stop", (7, 8))
    assert without_times(finished.metrics) == Metrics(4, 10, 3, 20)
    assert len(timer.record.token_times) == 4
    assert (timer.record.prompt_tokens, timer.record.output_tokens) == (0, 3)


def test_generate_flushes_held_text_and_drops_context_in_raw_mode() -> None:
    events, _ = run(
        lambda stream, timer: generate_events(stream, thinks=True, logprobs=False, raw=True, timer=timer),
        token("<think>still thinking"),
        DONE,
    )
    assert events[:-1] == [Output(thinking="still thinking")]
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.context is None


@pytest.mark.parametrize("asked", [True, False])
def test_generate_keeps_logprobs_only_when_asked(asked: bool) -> None:
    lp = Logprob("a", 1, -0.5, b"a")
    events, _ = run(
        lambda stream, timer: generate_events(stream, thinks=False, logprobs=asked, raw=False, timer=timer),
        token("a", lp),
        DONE,
    )
    assert events[0] == Output("a", logprobs=(lp,) if asked else ())


def test_chat_parses_tool_calls_and_flushes_at_the_end() -> None:
    output = ChatOutput(None, ToolCallParser("<tool_call>", ["get_weather"]))
    events, _ = run(
        lambda stream, timer: chat_events(stream, output, logprobs=False, timer=timer),
        token("<tool_call>\n"),
        token('{"name": "get_weather", "arguments": {"city": "Paris"}}'),
        token("\n</tool_call>"),
        DONE,
    )
    *outputs, finished = events
    calls = [call for out in outputs for call in out.tool_calls]
    assert [(c.name, dict(c.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert all(isinstance(c, ChatToolCall) and c.id for c in calls)
    assert "".join(out.content for out in outputs) == ""
    assert isinstance(finished, Finished) and finished.context is None


def test_chat_output_splits_thinking_before_parsing() -> None:
    output = ChatOutput(ThinkingParser(), None)
    assert output.feed("<think>a") == Output(thinking="a")
    assert output.feed("</think>b") == Output("b")
    assert output.flush() == Output()
