"""Engine events to dialect-neutral ones: text split into thinking, content and tool calls; metrics.

The engine yields :class:`~server.engine.Token` chunks and one :class:`~server.engine.Done`; these generators
turn them into :class:`~server.service.events.Output` events (never an empty one) and one
:class:`~server.service.events.Finished` with Ollama's metrics. Each dialect renders those
(:mod:`server.service.events`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from server.engine import Done, EventStream, Logprob, Token
from server.prompt import ChatToolCall
from server.service.events import Finished, Metrics, Output
from server.telemetry.record import RequestRecord
from server.thinking import ThinkingParser
from server.toolcalls import ToolCallParser


@dataclass
class Timer:
    """A request's clock: started when it arrived, marked when its model was ready. Its ``record`` collects what
    the request log and the metrics see (a clock reading per token, the token counts at the end)."""

    started: int
    loaded: int = 0
    record: RequestRecord = field(default_factory=RequestRecord)

    @classmethod
    def start(cls, record: RequestRecord | None = None) -> Timer:
        return cls(time.monotonic_ns(), record=record or RequestRecord())

    def mark_loaded(self) -> None:
        self.loaded = time.monotonic_ns()

    @property
    def load_ns(self) -> int:
        return max(self.loaded - self.started, 1)

    def total_ns(self) -> int:
        return time.monotonic_ns() - self.started


async def generate_events(
    events: EventStream, *, thinks: bool, logprobs: bool, raw: bool, timer: Timer
) -> AsyncIterator[Output | Finished]:
    """``/api/generate`` events for one generation; the stream is cancelled if the consumer stops early.
    ``Finished.context`` is the prompt and output tokens, or ``None`` in raw mode."""
    thinker = ThinkingParser() if thinks else None
    token = timer.record.token
    async with events:
        async for event in events:
            if isinstance(event, Token):
                token()
                thinking, text = thinker.feed(event.text) if thinker else ("", event.text)
                probs = event.logprobs if logprobs else ()
                if text or thinking or probs:
                    yield Output(content=text, thinking=thinking, logprobs=probs)
                continue
            if thinker is not None and any(rest := thinker.flush()):
                yield Output(content=rest.content, thinking=rest.thinking)
            yield Finished(event.done_reason, metrics(event, timer), context=None if raw else event.context)


async def chat_events(
    events: EventStream, output: ChatOutput, *, logprobs: bool, timer: Timer
) -> AsyncIterator[Output | Finished]:
    """``/api/chat`` events for one generation; ``output`` splits thinking and parses tool calls."""
    token = timer.record.token
    async with events:
        async for event in events:
            if isinstance(event, Token):
                token()
                out = output.feed(event.text, event.logprobs if logprobs else ())
                if out.content or out.thinking or out.tool_calls or out.logprobs:
                    yield out
                continue
            out = output.flush()
            if out.content or out.thinking or out.tool_calls:
                yield out
            yield Finished(event.done_reason, metrics(event, timer))


class ChatOutput:
    """Generated text -> assistant output parts: reasoning split off first, then tool calls parsed."""

    def __init__(self, thinker: ThinkingParser | None, tools: ToolCallParser | None) -> None:
        self.thinker = thinker
        self.tools = tools

    def feed(self, text: str, logprobs: tuple[Logprob, ...] = ()) -> Output:
        thinking, content = self.thinker.feed(text) if self.thinker else ("", text)
        content, calls = self.tools.feed(content) if self.tools and content else (content, [])
        return Output(content, thinking, tuple(calls), logprobs)

    def flush(self) -> Output:
        thinking, content = self.thinker.flush() if self.thinker else ("", "")
        calls: list[ChatToolCall] = []
        if self.tools is not None:
            fed, fed_calls = self.tools.feed(content) if content else ("", [])
            rest, rest_calls = self.tools.flush()
            content, calls = fed + rest, fed_calls + rest_calls
        return Output(content, thinking, tuple(calls))


def metrics(done: Done, timer: Timer) -> Metrics:
    """A generation's Ollama metrics (noting the token counts in the request record)."""
    timer.record.generated(
        prompt_tokens=done.prompt_tokens, evaluated=done.prompt_eval_count, output_tokens=done.eval_count
    )
    return Metrics(
        prompt_eval_count=done.prompt_eval_count,
        prompt_eval_duration=done.prompt_eval_duration_ns,
        eval_count=done.eval_count,
        eval_duration=done.eval_duration_ns,
        total_duration=timer.total_ns(),
        load_duration=timer.load_ns,
    )
