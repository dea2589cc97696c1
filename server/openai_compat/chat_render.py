"""The inference service's events (:mod:`server.service.events`) as ``/v1/chat/completions`` responses: one
``chat.completion`` for a folded reply, or ``chat.completion.chunk`` objects for a stream."""

from __future__ import annotations

from server.engine import Logprob
from server.gocompat import jsonenc as gojson
from server.native_render import debug_info, wire_logprobs
from server.prompt import ChatToolCall
from server.protocol import openai as oai
from server.service.events import Event, Finished, Output, Rendered, Reply

from .common import to_usage


def to_chat_completion(reply: Reply, *, model: str, id: str, created: int) -> oai.ChatCompletion:
    """A whole (folded) reply as a ``chat.completion``; ``finish_reason`` is ``tool_calls`` when the model
    stopped after calling a tool."""
    tool_calls = _response_tool_calls(reply.tool_calls)
    reason = reply.done_reason
    if reason == "stop" and tool_calls:
        reason = "tool_calls"
    return oai.ChatCompletion(
        id=id,
        created=created,
        model=model,
        choices=[
            oai.Choice(
                message=oai.ResponseMessage(
                    role="assistant", content=reply.content, reasoning=reply.thinking or None, tool_calls=tool_calls
                ),
                finish_reason=reason,
                logprobs=_logprobs(reply.logprobs),
            )
        ],
        usage=to_usage(reply.metrics),
        debug_info=debug_info(reply.end),
    )


def to_chat_completion_chunks(
    output: Output, *, model: str, id: str, created: int, include_role: bool
) -> list[oai.ChatCompletionChunk]:
    """The content chunks for one output event: one, or two when it carries both thinking and content/tool
    calls (a reasoning chunk, then a content chunk). ``finish_reason`` is left to ``finish_chunk``."""

    def chunk(delta: oai.Delta, logprobs: oai.ChoiceLogprobs | None) -> oai.ChatCompletionChunk:
        choice = oai.ChunkChoice(delta=delta, logprobs=logprobs)
        return oai.ChatCompletionChunk(id=id, created=created, model=model, choices=[choice])

    role = "assistant" if include_role else None
    tool_calls = _response_tool_calls(output.tool_calls)
    logprobs = _logprobs(output.logprobs)
    if not (output.thinking and (output.content or tool_calls)):
        delta = oai.Delta(role=role, content=output.content, reasoning=output.thinking or None, tool_calls=tool_calls)
        return [chunk(delta, logprobs)]
    return [
        chunk(oai.Delta(role=role, reasoning=output.thinking), logprobs),
        chunk(oai.Delta(content=output.content, tool_calls=tool_calls), None),
    ]


def finish_chunk(reason: str, *, model: str, id: str, created: int, tool_call_sent: bool) -> oai.ChatCompletionChunk:
    """The chunk with an empty delta that carries ``finish_reason`` (``tool_calls`` once a call was sent)."""
    if reason == "stop" and tool_call_sent:
        reason = "tool_calls"
    choice = oai.ChunkChoice(delta=oai.Delta(), finish_reason=reason)
    return oai.ChatCompletionChunk(id=id, created=created, model=model, choices=[choice])


class ChatCompletionStream:
    """Turns the event stream into ``chat.completion.chunk`` objects, one event at a time.

    The role appears in the first delta only (an answer with no output still opens with an empty one); the
    event that ends the stream gives a finish chunk with an empty delta, then (``include_usage``) a usage
    chunk with ``choices: []``. Every chunk carries the same ``created``. The caller writes ``data: [DONE]``
    after the last.
    """

    def __init__(self, *, model: str, id: str, created: int, include_usage: bool) -> None:
        self.model = model
        self.id = id
        self.created = created
        self.include_usage = include_usage
        self.first_sent = False
        self.tool_call_sent = False

    def feed(self, event: Event) -> list[oai.ChatCompletionChunk]:
        chunks = []
        if isinstance(event, Output) or not self.first_sent:
            output = event if isinstance(event, Output) else Output()
            chunks = to_chat_completion_chunks(
                output, model=self.model, id=self.id, created=self.created, include_role=not self.first_sent
            )
            self.first_sent = True
            self.tool_call_sent |= any(c.choices[0].delta.tool_calls for c in chunks)
        if isinstance(event, Output | Rendered):
            return chunks
        finish = finish_chunk(
            event.reason, model=self.model, id=self.id, created=self.created, tool_call_sent=self.tool_call_sent
        )
        chunks.append(finish)
        if self.include_usage:
            usage = to_usage(event.metrics if isinstance(event, Finished) else None)
            chunks.append(finish.model_copy(update={"choices": [], "usage": usage}))
        return chunks


def _response_tool_calls(calls: tuple[ChatToolCall, ...]) -> list[oai.ResponseToolCall] | None:
    if not calls:
        return None
    return [
        oai.ResponseToolCall(
            id=call.id,
            index=call.index,
            function=oai.ResponseFunction(name=call.name, arguments=gojson.dumps(dict(call.arguments))),
        )
        for call in calls
    ]


def _logprobs(logprobs: tuple[Logprob, ...]) -> oai.ChoiceLogprobs | None:
    return oai.ChoiceLogprobs(content=wire_logprobs(logprobs)) if logprobs else None
