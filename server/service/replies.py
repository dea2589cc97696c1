"""Engine events to native response objects: text split into thinking, content and tool calls; metrics.

The engine yields :class:`~server.engine.Token` chunks and one :class:`~server.engine.Done`; these generators
turn them into ``GenerateResponse`` / ``ChatResponse`` chunks (the final one with Ollama's metrics). The OpenAI
dialect renders from these same chunks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from server.engine import Done, EventStream, Token
from server.gocompat.timefmt import now_iso
from server.prompt import ChatToolCall
from server.protocol import ollama as api
from server.service.prompting import wire_tool_call
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


async def generate_chunks(
    model: str, events: EventStream, *, thinks: bool, logprobs: bool, raw: bool, timer: Timer
) -> AsyncIterator[api.GenerateResponse]:
    """``/api/generate`` chunks for one generation; the stream is cancelled if the consumer stops early."""
    thinker = ThinkingParser() if thinks else None
    token = timer.record.token
    async with events:
        async for event in events:
            if isinstance(event, Token):
                token()
                thinking, text = thinker.feed(event.text) if thinker else ("", event.text)
                probs = wire_logprobs(event) if logprobs else None
                if text or thinking or probs:
                    yield api.GenerateResponse(
                        model=model,
                        created_at=now_iso(),
                        response=text,
                        thinking=thinking or None,
                        done=False,
                        logprobs=probs,
                    )
                continue
            if thinker is not None and any(rest := thinker.flush()):
                yield api.GenerateResponse(
                    model=model, created_at=now_iso(), response=rest.content, thinking=rest.thinking or None, done=False
                )
            final = api.GenerateResponse(
                model=model,
                created_at=now_iso(),
                done=True,
                done_reason=event.done_reason,
                context=None if raw else list(event.context),
            )
            yield final.model_copy(update=metrics(event, timer))


async def chat_chunks(
    model: str, events: EventStream, output: ChatOutput, *, logprobs: bool, timer: Timer
) -> AsyncIterator[api.ChatResponse]:
    """``/api/chat`` chunks for one generation; ``output`` splits thinking and parses tool calls."""
    token = timer.record.token
    async with events:
        async for event in events:
            if isinstance(event, Token):
                token()
                probs = wire_logprobs(event) if logprobs else None
                message = output.feed(event.text)
                if message.content or message.thinking or message.tool_calls or probs:
                    yield chat_response(model, message, done=False, logprobs=probs)
                continue
            message = output.flush()
            if message.content or message.thinking or message.tool_calls:
                yield chat_response(model, message, done=False)
            final = chat_response(model, assistant(""), done=True, done_reason=event.done_reason)
            yield final.model_copy(update=metrics(event, timer))


def chat_response(
    model: str,
    message: api.Message,
    *,
    done: bool,
    done_reason: str | None = None,
    logprobs: list[api.Logprob] | None = None,
) -> api.ChatResponse:
    return api.ChatResponse(
        model=model, created_at=now_iso(), message=message, done=done, done_reason=done_reason, logprobs=logprobs
    )


def assistant(content: str, thinking: str = "", calls: list[ChatToolCall] | None = None) -> api.Message:
    return api.Message(
        role="assistant",
        content=content,
        thinking=thinking or None,
        tool_calls=[wire_tool_call(c) for c in calls] if calls else None,
    )


class ChatOutput:
    """Generated text -> assistant message parts: reasoning split off first, then tool calls parsed."""

    def __init__(self, thinker: ThinkingParser | None, tools: ToolCallParser | None) -> None:
        self.thinker = thinker
        self.tools = tools

    def feed(self, text: str) -> api.Message:
        thinking, content = self.thinker.feed(text) if self.thinker else ("", text)
        content, calls = self.tools.feed(content) if self.tools and content else (content, [])
        return assistant(content, thinking, calls)

    def flush(self) -> api.Message:
        thinking, content = self.thinker.flush() if self.thinker else ("", "")
        calls: list[ChatToolCall] = []
        if self.tools is not None:
            fed, fed_calls = self.tools.feed(content) if content else ("", [])
            rest, rest_calls = self.tools.flush()
            content, calls = fed + rest, fed_calls + rest_calls
        return assistant(content, thinking, calls)


def metrics(done: Done, timer: Timer) -> dict[str, int]:
    """The final chunk's Ollama metrics (and the request record's token counts)."""
    timer.record.generated(
        prompt_tokens=done.prompt_tokens, evaluated=done.prompt_eval_count, output_tokens=done.eval_count
    )
    return {
        "total_duration": timer.total_ns(),
        "load_duration": timer.load_ns,
        "prompt_eval_count": done.prompt_eval_count,
        "prompt_eval_duration": done.prompt_eval_duration_ns,
        "eval_count": done.eval_count,
        "eval_duration": done.eval_duration_ns,
    }


def wire_logprobs(token: Token) -> list[api.Logprob]:
    return [
        api.Logprob(
            token=lp.token,
            logprob=lp.logprob,
            bytes=list(lp.bytes),
            top_logprobs=[
                api.TopLogprob(token=t.token, logprob=t.logprob, bytes=list(t.bytes)) for t in lp.top_logprobs
            ]
            or None,
        )
        for lp in token.logprobs
    ]
