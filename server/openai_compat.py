"""Pure conversions between the OpenAI-compatible wire models (``/v1/*``) and the native ones (``/api/*``).

``/v1`` routes convert a request with a ``from_*`` function, run the same service code as ``/api`` and
convert what it yields with a ``to_*`` function (or a ``*Stream`` for SSE). Nothing here does I/O; invalid
requests raise ``BadRequest`` with Ollama's texts (reference §3).

Where Corral goes beyond Ollama's shim (which ignores them) the choices are:

* ``n``: absent or 1; anything else is a 400, since only one choice is ever produced.
* ``max_completion_tokens``: like ``max_tokens`` (→ ``num_predict``); it wins when both are sent.
* ``tool_choice``: ``"auto"`` (or absent) sends the tools as given; ``"none"`` sends no tools, so the model
  answers in text; ``"required"`` sends the tools as given (there is no way to force a call without a
  grammar, so it is best effort); ``{"type": "function", "function": {"name": N}}`` sends only tool ``N``
  (400 when the request has no such tool). Nothing is added to the prompt in any case.
* ``think`` is accepted as an Ollama extension next to ``reasoning_effort``/``reasoning.effort`` (which win),
  and so are ``keep_alive`` and ``_debug_render_only``.
* ``/v1/completions``: ``prompt`` may be a list holding one string; ``echo`` prepends the prompt to the text;
  ``logprobs`` come back in OpenAI's legacy shape (``tokens``, ``token_logprobs``, ``top_logprobs``,
  ``text_offset``).
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import struct
from datetime import datetime
from typing import Any

from server import gojson
from server.errors import ApiError, BadRequest, InternalError
from server.protocol import ollama as api
from server.protocol import openai as oai
from server.store.names import ModelName

_IMAGE_PREFIXES = (*(f"data:image/{kind};base64," for kind in ("jpeg", "jpg", "png", "webp")), "data:;base64,")
# OpenAI's efforts (and clients' extra tiers) clamped to Ollama's think values.
_REASONING_EFFORTS: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "max",
    "xhigh": "max",
    "ultra": "max",
}


def chat_completion_id() -> str:
    return f"chatcmpl-{random.randrange(999)}"


def completion_id() -> str:
    return f"cmpl-{random.randrange(999)}"


def unix_time(created_at: str) -> int:
    """Seconds since the epoch of a native ``created_at`` (RFC 3339)."""
    return int(datetime.fromisoformat(created_at).timestamp())


# -- errors ------------------------------------------------------------------------------------------------


def to_error(exc: ApiError) -> oai.ErrorResponse:
    """``{"error": {"message", "type", "param", "code"}}`` with the native text and the class's OpenAI type."""
    return oai.ErrorResponse(error=oai.Error(message=exc.message, type=exc.openai_type))


# -- chat --------------------------------------------------------------------------------------------------


def from_chat_completion_request(req: oai.ChatCompletionRequest) -> api.ChatRequest:
    """The native chat request for ``req``. Raises ``BadRequest`` for what Ollama's shim rejects."""
    if not req.messages:
        raise BadRequest("[] is too short - 'messages'")
    _check_n(req.n)
    messages: list[api.Message] = []
    for msg in req.messages:
        messages += _messages(msg, req.messages)
    options: dict[str, Any] = {}
    stop = _stop(req.stop, strict=False)
    if stop is not None:
        options["stop"] = stop
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    options["temperature"] = req.temperature if req.temperature is not None else 1.0
    if req.seed is not None:
        options["seed"] = req.seed
    if req.frequency_penalty is not None:
        options["frequency_penalty"] = req.frequency_penalty
    if req.presence_penalty is not None:
        options["presence_penalty"] = req.presence_penalty
    options["top_p"] = req.top_p if req.top_p is not None else 1.0
    return api.ChatRequest(
        model=req.model,
        messages=messages,
        stream=req.stream,
        format=_format(req.response_format),
        keep_alive=req.keep_alive,
        options=options,
        tools=_tools(req.tools, req.tool_choice),
        think=_think(req),
        logprobs=bool(req.logprobs),
        top_logprobs=req.top_logprobs,
        debug_render_only=req.debug_render_only,
    )


def _check_n(n: int | None) -> None:
    if n is not None and n != 1:
        raise BadRequest(f"invalid value for 'n': {n} (only one choice per request is supported)")


def _messages(msg: oai.Message, history: list[oai.Message]) -> list[api.Message]:
    """One OpenAI message as native messages: each content part becomes its own message of the same role."""
    tool_name = ""
    if msg.role.lower() == "tool":
        tool_name = msg.name or _tool_name_for(msg.tool_call_id, history)
    tool_calls = _tool_calls(msg.tool_calls) if msg.tool_calls else None
    extra: dict[str, Any] = {
        "tool_calls": tool_calls,
        "tool_name": tool_name or None,
        "tool_call_id": msg.tool_call_id or None,
        "thinking": msg.reasoning or None,
    }
    content = msg.content
    if isinstance(content, str):
        return [api.Message(role=msg.role, content=content, **extra)]
    if isinstance(content, list):
        parts = [_part_message(msg.role, part) for part in content]
        if tool_calls and not parts:
            parts.append(api.Message(role=msg.role))
        if parts:
            parts[-1] = parts[-1].model_copy(update={k: v for k, v in extra.items() if v is not None})
        return parts
    if msg.tool_calls is None:
        raise BadRequest(f"invalid message content type: {_go_type(content)}")
    return [api.Message(role=msg.role, **extra)]


def _part_message(role: str, part: Any) -> api.Message:
    if not isinstance(part, dict):
        raise BadRequest("invalid message format")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise BadRequest("invalid message format")
        return api.Message(role=role, content=text)
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise BadRequest("invalid message format")
        return api.Message(role=role, images=[_image_data(url)])
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            raise BadRequest("invalid input_audio format")
        data = audio.get("data")
        if not isinstance(data, str):
            raise BadRequest("invalid input_audio format: missing data")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"invalid input_audio base64 data: {exc}") from exc
        # Ollama hands audio to the model as media next to images; models without it get the service's
        # capability error.
        return api.Message(role=role, images=[data])
    raise BadRequest("invalid message format")


def _image_data(url: str) -> str:
    """The base64 payload of a data URL (the native API takes base64 strings)."""
    if url.startswith(("http://", "https://")):
        raise BadRequest("image URLs are not currently supported, please use base64 encoded data instead")
    prefix = next((p for p in _IMAGE_PREFIXES if url.startswith(p)), None)
    if prefix is None:
        raise BadRequest("invalid image input")
    data = url[len(prefix) :]
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("invalid image input") from exc
    return data


def _tool_name_for(call_id: str, history: list[oai.Message]) -> str:
    """The function name of an earlier assistant tool call with this id (the last one wins)."""
    if not call_id:
        return ""
    for msg in reversed(history):
        for call in msg.tool_calls or []:
            if call.id == call_id:
                return call.function.name
    return ""


def _tool_calls(calls: list[oai.ToolCall]) -> list[api.ToolCall]:
    """Assistant tool calls with JSON-string arguments → native calls with argument objects."""
    native = []
    for call in calls:
        arguments = call.function.arguments
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise BadRequest("invalid tool call arguments") from exc
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise BadRequest("invalid tool call arguments")
        native.append(
            api.ToolCall(
                id=call.id or None, function=api.ToolCallFunction(name=call.function.name, arguments=arguments)
            )
        )
    return native


def _stop(value: Any, *, strict: bool) -> list[str] | None:
    """``stop`` as a list: a string is one stop word. Non-string list items are skipped by chat and
    rejected by completions (``strict``), as Ollama does; other types are ignored."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return None
    stops = []
    for item in value:
        if isinstance(item, str):
            stops.append(item)
        elif strict:
            raise BadRequest(f"invalid type for 'stop' field: {_go_type(item)}")
    return stops


def _format(response_format: oai.ResponseFormat | None) -> str | dict[str, Any] | None:
    if response_format is None:
        return None
    kind = response_format.type.strip().lower()
    if kind == "json_object":
        return "json"
    if kind != "json_schema" or response_format.json_schema is None:
        return None
    schema = response_format.json_schema.schema_
    if schema is None or isinstance(schema, str | dict):
        return schema
    # What /api/chat answers for the same value.
    raise InternalError(f'invalid format: "{gojson.dumps(schema)}"; expected "json" or a valid JSON Schema object')


def _tools(tools: list[dict[str, Any]] | None, choice: Any) -> list[dict[str, Any]] | None:
    if choice is None or choice in ("auto", "required"):
        return tools
    if choice == "none":
        return None
    if isinstance(choice, dict) and choice.get("type", "function") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise BadRequest("invalid value for 'tool_choice': the function needs a name")
        chosen = [t for t in tools or [] if (t.get("function") or {}).get("name") == name]
        if not chosen:
            raise BadRequest(f"invalid value for 'tool_choice': no tool named {name!r} in 'tools'")
        return chosen
    raise BadRequest(
        f"invalid value for 'tool_choice': {gojson.dumps(choice)} "
        '(must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}})'
    )


def _think(req: oai.ChatCompletionRequest) -> Any:
    effort = req.reasoning.effort if req.reasoning is not None else (req.reasoning_effort or "")
    if not effort:
        return req.think
    if effort not in _REASONING_EFFORTS:
        raise BadRequest(
            f'invalid reasoning value: "{effort}" '
            '(must be "minimal", "low", "medium", "high", "xhigh", "ultra", "max", or "none")'
        )
    return _REASONING_EFFORTS[effort]


def to_usage(native: api.ChatResponse | api.GenerateResponse) -> oai.Usage:
    prompt = native.prompt_eval_count or 0
    completion = native.eval_count or 0
    return oai.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _response_tool_calls(calls: list[api.ToolCall] | None) -> list[oai.ResponseToolCall] | None:
    if not calls:
        return None
    return [
        oai.ResponseToolCall(
            id=call.id or "",
            index=call.function.index or 0,
            function=oai.ResponseFunction(name=call.function.name, arguments=gojson.dumps(call.function.arguments)),
        )
        for call in calls
    ]


def _logprobs(logprobs: list[api.Logprob] | None) -> oai.ChoiceLogprobs | None:
    return oai.ChoiceLogprobs(content=logprobs) if logprobs else None


def to_chat_completion(native: api.ChatResponse, *, id: str) -> oai.ChatCompletion:
    """A whole (collected) native chat response as a ``chat.completion``."""
    tool_calls = _response_tool_calls(native.message.tool_calls)
    reason = native.done_reason or None
    if reason == "stop" and tool_calls:
        reason = "tool_calls"
    return oai.ChatCompletion(
        id=id,
        created=unix_time(native.created_at),
        model=native.model,
        choices=[
            oai.Choice(
                message=oai.ResponseMessage(
                    role=native.message.role,
                    content=native.message.content,
                    reasoning=native.message.thinking or None,
                    tool_calls=tool_calls,
                ),
                finish_reason=reason,
                logprobs=_logprobs(native.logprobs),
            )
        ],
        usage=to_usage(native),
        debug_info=native.debug_info,
    )


def to_chat_completion_chunks(
    native: api.ChatResponse, *, id: str, created: int, include_role: bool
) -> list[oai.ChatCompletionChunk]:
    """The content chunks for one native chunk: one, or two when it carries both thinking and content/tool
    calls (a reasoning chunk, then a content chunk). ``finish_reason`` is left to ``finish_chunk``."""

    def chunk(delta: oai.Delta, logprobs: oai.ChoiceLogprobs | None) -> oai.ChatCompletionChunk:
        choice = oai.ChunkChoice(delta=delta, logprobs=logprobs)
        return oai.ChatCompletionChunk(id=id, created=created, model=native.model, choices=[choice])

    message = native.message
    role = "assistant" if include_role else None
    tool_calls = _response_tool_calls(message.tool_calls)
    logprobs = _logprobs(native.logprobs)
    if not (message.thinking and (message.content or tool_calls)):
        delta = oai.Delta(role=role, content=message.content, reasoning=message.thinking or None, tool_calls=tool_calls)
        return [chunk(delta, logprobs)]
    return [
        chunk(oai.Delta(role=role, reasoning=message.thinking), logprobs),
        chunk(oai.Delta(content=message.content, tool_calls=tool_calls), None),
    ]


def finish_chunk(native: api.ChatResponse, *, id: str, created: int, tool_call_sent: bool) -> oai.ChatCompletionChunk:
    """The chunk with an empty delta that carries ``finish_reason`` (``tool_calls`` once a call was sent)."""
    reason = native.done_reason or "stop"
    if reason == "stop" and tool_call_sent:
        reason = "tool_calls"
    choice = oai.ChunkChoice(delta=oai.Delta(), finish_reason=reason)
    return oai.ChatCompletionChunk(id=id, created=created, model=native.model, choices=[choice])


class ChatCompletionStream:
    """Turns the native chat stream into ``chat.completion.chunk`` objects, one native chunk at a time.

    The role appears in the first delta only; the final metrics-only native chunk gives no content chunk;
    when the native stream is done a finish chunk with an empty delta follows, then (``include_usage``) a
    usage chunk with ``choices: []``. Every chunk carries the same ``created``, taken from the first one.
    The caller writes ``data: [DONE]`` after the last.
    """

    def __init__(self, *, id: str, include_usage: bool) -> None:
        self.id = id
        self.include_usage = include_usage
        self.created: int | None = None
        self.first_sent = False
        self.tool_call_sent = False

    def feed(self, native: api.ChatResponse) -> list[oai.ChatCompletionChunk]:
        if self.created is None:
            self.created = unix_time(native.created_at)
        created = self.created
        message = native.message
        empty_trailer = (
            native.done
            and self.first_sent
            and not message.content
            and not message.thinking
            and not message.tool_calls
            and not native.logprobs
        )
        chunks = []
        if not empty_trailer:
            chunks = to_chat_completion_chunks(native, id=self.id, created=created, include_role=not self.first_sent)
            self.first_sent = True
            self.tool_call_sent |= any(c.choices[0].delta.tool_calls for c in chunks)
        if native.done:
            finish = finish_chunk(native, id=self.id, created=created, tool_call_sent=self.tool_call_sent)
            chunks.append(finish)
            if self.include_usage:
                chunks.append(finish.model_copy(update={"choices": [], "usage": to_usage(native)}))
        return chunks


# -- completions -------------------------------------------------------------------------------------------


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
        f"json: cannot unmarshal {_json_type(prompt)} into Go struct field CompletionRequest.prompt of type string"
    )


def from_completion_request(req: oai.CompletionRequest) -> api.GenerateRequest:
    _check_n(req.n)
    prompt = completion_prompt(req)
    options: dict[str, Any] = {}
    stop = _stop(req.stop, strict=True)
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


# -- embeddings --------------------------------------------------------------------------------------------


def from_embedding_request(req: oai.EmbeddingRequest) -> api.EmbedRequest:
    if req.encoding_format and req.encoding_format.lower() not in ("float", "base64"):
        raise BadRequest(
            f"Invalid value for 'encoding_format' = {req.encoding_format}. Supported values: ['float', 'base64']."
        )
    value = [""] if req.input == "" else req.input
    if value is None or value == []:
        raise BadRequest("invalid input")
    return api.EmbedRequest(model=req.model, input=value, dimensions=req.dimensions or None, keep_alive=req.keep_alive)


def embedding_base64(vector: list[float]) -> str:
    """Little-endian float32 bytes, base64-encoded (what the openai SDKs decode)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def to_embedding_list(native: api.EmbedResponse, *, model: str, encoding_format: str = "") -> oai.EmbeddingList:
    as_base64 = encoding_format.lower() == "base64"
    data = [
        oai.Embedding(embedding=embedding_base64(vector) if as_base64 else vector, index=i)
        for i, vector in enumerate(native.embeddings)
    ]
    tokens = native.prompt_eval_count or 0
    return oai.EmbeddingList(
        data=data, model=model, usage=oai.EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
    )


# -- models ------------------------------------------------------------------------------------------------


def to_model(name: str, modified_at: str) -> oai.Model:
    """A model as ``/v1/models`` shows it: ``owned_by`` is the namespace (``library``, or the user of an
    ``hf.co`` model); ``created`` is the modification time."""
    parsed = ModelName.try_parse(name)
    return oai.Model(id=name, created=unix_time(modified_at), owned_by=parsed.namespace if parsed else "")


def to_model_list(native: api.ListResponse) -> oai.ModelList:
    return oai.ModelList(data=[to_model(m.model or m.name, m.modified_at) for m in native.models] or None)


# -- Go's names for JSON types, as Ollama's error texts print them -------------------------------------------


def _go_type(value: Any) -> str:
    """Go's ``%T`` of a decoded JSON value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
