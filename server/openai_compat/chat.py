"""``/v1/chat/completions`` requests as ``/api/chat`` requests (responses: :mod:`.chat_render`)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from server.errors import BadRequest, InternalError
from server.gocompat import jsonenc as gojson
from server.protocol import ollama as api
from server.protocol import openai as oai

from .common import check_n, go_type, stop_sequences

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


def from_chat_completion_request(req: oai.ChatCompletionRequest) -> api.ChatRequest:
    """The native chat request for ``req``. Raises ``BadRequest`` for what Ollama's shim rejects."""
    if not req.messages:
        raise BadRequest("[] is too short - 'messages'")
    check_n(req.n)
    messages: list[api.Message] = []
    for msg in req.messages:
        messages += _messages(msg, req.messages)
    options: dict[str, Any] = {}
    stop = stop_sequences(req.stop, strict=False)
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
        raise BadRequest(f"invalid message content type: {go_type(content)}")
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
