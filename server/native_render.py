"""The native dialect's renderer: the inference service's events (:mod:`server.service.events`) as Ollama's
``/api/generate`` and ``/api/chat`` response objects.

A renderer is made per response with the model name the client asked for. ``chunk`` renders one streamed
event (``created_at`` is the time it is rendered); ``whole`` renders the :class:`~server.service.events.Reply`
that ``stream: false`` answers with, and the single object of a load, unload or debug-render request. The
final chunk carries the metrics; fields left empty are omitted on the wire, as Ollama's ``omitempty`` does.
"""

from __future__ import annotations

from typing import Any, Protocol

from server.engine import Logprob
from server.gocompat.timefmt import now_iso
from server.prompt import ChatToolCall
from server.protocol import ollama as api
from server.protocol.base import WireModel
from server.service.events import End, Event, Finished, Metrics, Output, Rendered, Reply
from server.service.prompting import wire_tool_call


class NativeRenderer(Protocol):
    """What :func:`server.streaming.inference_response` needs of a renderer."""

    def chunk(self, event: Event) -> WireModel: ...

    def whole(self, reply: Reply) -> WireModel: ...


class GenerateRenderer:
    """Events -> ``GenerateResponse`` objects for ``/api/generate``."""

    def __init__(self, model: str) -> None:
        self.model = model

    def chunk(self, event: Event) -> api.GenerateResponse:
        if isinstance(event, Output):
            return self._response(done=False, response=event.content, thinking=event.thinking, logprobs=event.logprobs)
        return self.whole(Reply(end=event))

    def whole(self, reply: Reply) -> api.GenerateResponse:
        end = reply.end
        return self._response(
            done=not isinstance(end, Rendered),
            done_reason=reply.done_reason,
            response=reply.content,
            thinking=reply.thinking,
            logprobs=reply.logprobs,
            context=list(end.context) if isinstance(end, Finished) and end.context is not None else None,
            debug_info=debug_info(end),
            **metric_fields(reply.metrics),
        )

    def _response(self, *, thinking: str, logprobs: tuple[Logprob, ...], **fields: Any) -> api.GenerateResponse:
        return api.GenerateResponse(
            model=self.model,
            created_at=now_iso(),
            thinking=thinking or None,
            logprobs=wire_logprobs(logprobs) or None,
            **fields,
        )


class ChatRenderer:
    """Events -> ``ChatResponse`` objects for ``/api/chat``: the output as an assistant message."""

    def __init__(self, model: str) -> None:
        self.model = model

    def chunk(self, event: Event) -> api.ChatResponse:
        if isinstance(event, Output):
            message = assistant(event.content, event.thinking, event.tool_calls)
            return self._response(message, done=False, logprobs=event.logprobs)
        return self.whole(Reply(end=event))

    def whole(self, reply: Reply) -> api.ChatResponse:
        end = reply.end
        return self._response(
            assistant(reply.content, reply.thinking, reply.tool_calls),
            done=not isinstance(end, Rendered),
            done_reason=reply.done_reason,
            logprobs=reply.logprobs,
            debug_info=debug_info(end),
            **metric_fields(reply.metrics),
        )

    def _response(
        self, message: api.Message, *, done: bool, logprobs: tuple[Logprob, ...], **fields: Any
    ) -> api.ChatResponse:
        return api.ChatResponse(
            model=self.model,
            created_at=now_iso(),
            message=message,
            done=done,
            logprobs=wire_logprobs(logprobs) or None,
            **fields,
        )


def assistant(content: str, thinking: str = "", calls: tuple[ChatToolCall, ...] = ()) -> api.Message:
    return api.Message(
        role="assistant",
        content=content,
        thinking=thinking or None,
        tool_calls=[wire_tool_call(c) for c in calls] or None,
    )


def metric_fields(metrics: Metrics | None) -> dict[str, int]:
    """The final object's metric fields (none for answers that generated nothing)."""
    if metrics is None:
        return {}
    return {
        "total_duration": metrics.total_duration,
        "load_duration": metrics.load_duration,
        "prompt_eval_count": metrics.prompt_eval_count,
        "prompt_eval_duration": metrics.prompt_eval_duration,
        "eval_count": metrics.eval_count,
        "eval_duration": metrics.eval_duration,
    }


def debug_info(end: End | Rendered | None) -> dict[str, Any] | None:
    """``_debug_info`` (in both dialects): set for a debug render only."""
    if not isinstance(end, Rendered):
        return None
    return {"rendered_template": end.prompt, "image_count": end.image_count}


def wire_logprobs(logprobs: tuple[Logprob, ...]) -> list[api.Logprob]:
    """The engine's log-probabilities in Ollama's shape (``/v1/chat/completions`` uses it too)."""
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
        for lp in logprobs
    ]
