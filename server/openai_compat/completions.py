"""``/v1/completions`` <-> ``/api/generate``: the request as a native one, the events as completions."""

from __future__ import annotations

from typing import Any

from server.engine import Logprob
from server.errors import BadRequest
from server.gocompat.jsonenc import json_type
from server.native_render import debug_info
from server.protocol import ollama as api
from server.protocol import openai as oai
from server.service.events import Event, Finished, Output, Rendered, Reply

from .common import check_n, stop_sequences, to_usage


def completion_prompt(req: oai.CompletionRequest) -> str:
    """The one prompt of a completion request: a string, or a list holding one string."""
    prompt = req.prompt
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        raise BadRequest("invalid prompt: only one prompt per request is supported")
    if isinstance(prompt, list):
        raise BadRequest("invalid prompt: token arrays are not supported, send the prompt as a string")
    raise BadRequest(
        f"json: cannot unmarshal {json_type(prompt)} into Go struct field CompletionRequest.prompt of type string"
    )


def from_completion_request(req: oai.CompletionRequest) -> api.GenerateRequest:
    check_n(req.n)
    prompt = completion_prompt(req)
    options: dict[str, Any] = {}
    stop = stop_sequences(req.stop, strict=True)
    if stop is not None:
        options["stop"] = stop
    if req.max_tokens is not None:
        options["num_predict"] = req.max_tokens
    options["temperature"] = req.temperature if req.temperature is not None else 1.0
    if req.seed is not None:
        options["seed"] = req.seed
    options["frequency_penalty"] = req.frequency_penalty
    options["presence_penalty"] = req.presence_penalty
    options["top_p"] = req.top_p if req.top_p != 0 else 1.0
    top_logprobs = req.logprobs if req.logprobs is not None and req.logprobs > 0 else 0
    return api.GenerateRequest(
        model=req.model,
        prompt=prompt,
        suffix=req.suffix,
        stream=req.stream,
        keep_alive=req.keep_alive,
        options=options,
        logprobs=top_logprobs > 0,
        top_logprobs=top_logprobs,
        debug_render_only=req.debug_render_only,
    )


def _completion_logprobs(logprobs: tuple[Logprob, ...], *, offset: int) -> oai.CompletionLogprobs | None:
    """OpenAI's legacy logprobs; ``offset`` is where the first token's text starts in the choice's text so far."""
    if not logprobs:
        return None
    offsets = []
    for lp in logprobs:
        offsets.append(offset)
        offset += len(lp.token)
    return oai.CompletionLogprobs(
        tokens=[lp.token for lp in logprobs],
        token_logprobs=[lp.logprob for lp in logprobs],
        top_logprobs=[{t.token: t.logprob for t in lp.top_logprobs} for lp in logprobs],
        text_offset=offsets,
    )


def to_completion(reply: Reply, *, model: str, id: str, created: int, echo: str = "") -> oai.Completion:
    """A whole (folded) reply as a ``text_completion``; ``echo`` is prepended. Thinking is not shown."""
    choice = oai.CompletionChoice(
        text=echo + reply.content,
        finish_reason=reply.done_reason,
        logprobs=_completion_logprobs(reply.logprobs, offset=len(echo)),
    )
    return oai.Completion(
        id=id,
        created=created,
        model=model,
        choices=[choice],
        usage=to_usage(reply.metrics),
        debug_info=debug_info(reply.end),
    )


class CompletionStream:
    """Turns the event stream into ``text_completion`` chunks: one per event (the one that ends the stream
    carries ``finish_reason``), with ``include_usage`` a zero ``usage`` on each and a final chunk with
    ``choices: []`` and the real usage. ``echo`` text leads the first chunk. The caller writes ``[DONE]``."""

    def __init__(self, *, model: str, id: str, created: int, include_usage: bool, echo: str = "") -> None:
        self.model = model
        self.id = id
        self.created = created
        self.include_usage = include_usage
        self.pending_echo = echo
        self.offset = 0

    def feed(self, event: Event) -> list[oai.CompletionChunk]:
        output = event if isinstance(event, Output) else Output()
        echo, self.pending_echo = self.pending_echo, ""
        text = echo + output.content
        choice = oai.CompletionChoice(
            text=text,
            finish_reason=None if isinstance(event, Output | Rendered) else event.reason,
            logprobs=_completion_logprobs(output.logprobs, offset=self.offset + len(echo)),
        )
        self.offset += len(text)
        chunk = oai.CompletionChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[choice],
            usage=oai.Usage() if self.include_usage else None,
        )
        if isinstance(event, Output | Rendered) or not self.include_usage:
            return [chunk]
        usage = to_usage(event.metrics if isinstance(event, Finished) else None)
        return [chunk, chunk.model_copy(update={"choices": [], "usage": usage})]
