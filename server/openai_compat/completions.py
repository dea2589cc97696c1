"""``/v1/completions`` <-> ``/api/generate``."""

from __future__ import annotations

from typing import Any

from server.errors import BadRequest
from server.gocompat.jsonenc import json_type
from server.protocol import ollama as api
from server.protocol import openai as oai

from .common import (
    check_n,
    stop_sequences,
    to_usage,
    unix_time,
)


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


def _completion_logprobs(logprobs: list[api.Logprob] | None, *, offset: int) -> oai.CompletionLogprobs | None:
    if not logprobs:
        return None
    offsets = []
    for lp in logprobs:
        offsets.append(offset)
        offset += len(lp.token)
    return oai.CompletionLogprobs(
        tokens=[lp.token for lp in logprobs],
        token_logprobs=[lp.logprob for lp in logprobs],
        top_logprobs=[{t.token: t.logprob for t in lp.top_logprobs or []} for lp in logprobs],
        text_offset=offsets,
    )


def to_completion(native: api.GenerateResponse, *, id: str, echo: str = "") -> oai.Completion:
    """A whole (collected) native generate response as a ``text_completion``; ``echo`` is prepended."""
    choice = oai.CompletionChoice(
        text=echo + native.response,
        finish_reason=native.done_reason or None,
        logprobs=_completion_logprobs(native.logprobs, offset=len(echo)),
    )
    return oai.Completion(
        id=id,
        created=unix_time(native.created_at),
        model=native.model,
        choices=[choice],
        usage=to_usage(native),
        debug_info=native.debug_info,
    )


class CompletionStream:
    """Turns the native generate stream into ``text_completion`` chunks: one per native chunk (the last
    carries ``finish_reason``), with ``include_usage`` a zero ``usage`` on each and a final chunk with
    ``choices: []`` and the real usage. ``echo`` text leads the first chunk. The caller writes ``[DONE]``."""

    def __init__(self, *, id: str, include_usage: bool, echo: str = "") -> None:
        self.id = id
        self.include_usage = include_usage
        self.pending_echo = echo
        self.offset = 0
        self.created: int | None = None

    def feed(self, native: api.GenerateResponse) -> list[oai.CompletionChunk]:
        if self.created is None:
            self.created = unix_time(native.created_at)
        text = self.pending_echo + native.response
        self.pending_echo = ""
        choice = oai.CompletionChoice(
            text=text,
            finish_reason=native.done_reason or None,
            logprobs=_completion_logprobs(native.logprobs, offset=self.offset + len(text) - len(native.response)),
        )
        self.offset += len(text)
        chunk = oai.CompletionChunk(
            id=self.id,
            created=self.created,
            model=native.model,
            choices=[choice],
            usage=oai.Usage() if self.include_usage else None,
        )
        chunks = [chunk]
        if native.done and self.include_usage:
            chunks.append(chunk.model_copy(update={"choices": [], "usage": to_usage(native)}))
        return chunks
