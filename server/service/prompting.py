"""The bridge between wire requests and ``server.prompt``: which template a model uses, and the conversion of
wire messages and parsed tool calls to and from the prompt module's types."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.prompt import ChatMessage, ChatToolCall, build_chat_prompt, build_generate_prompt
from server.protocol import ollama as api
from server.service.models import ResolvedModel
from server.service.params import Think


@dataclass(frozen=True)
class Prompt:
    """Rendered prompt text and the tag that opens a tool call in this model's output."""

    text: str
    tool_tag: str


@dataclass(frozen=True)
class PromptRequest:
    """The parts of a generate request that shape its prompt."""

    prompt: str
    suffix: str = ""
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    think: Think | None = None
    images: tuple[bytes, ...] = ()


def render_generate(model: ResolvedModel, req: PromptRequest) -> Prompt:
    """``/api/generate``'s prompt. Raw requests are sent as they are; a request ``context`` (tokens) is put in
    front by the caller, so here it only suppresses the Modelfile MESSAGEs."""
    if req.raw:
        return Prompt(text=req.prompt, tool_tag="{")
    rendered = build_generate_prompt(
        req.template or model.prompt_template,
        model.chat_template,
        req.prompt,
        system=req.system or "",
        modelfile_system=model.content.system,
        modelfile_messages=_modelfile_messages(model),
        context="" if req.context is not None else None,
        suffix=req.suffix,
        images=req.images,
        think=_think_value(req.think),
    )
    return Prompt(text=rendered.prompt, tool_tag=_tool_tag(model))


def render_chat(
    model: ResolvedModel,
    messages: list[api.Message],
    tools: list[dict[str, Any]] | None,
    think: Think,
    *,
    count_tokens: Callable[[str], int] | None,
    num_ctx: int,
) -> Prompt:
    """``/api/chat``'s prompt, truncated to ``num_ctx`` tokens when ``count_tokens`` is given."""
    rendered = build_chat_prompt(
        model.prompt_template,
        model.chat_template,
        [chat_message(m) for m in messages],
        tools or (),
        modelfile_system=model.content.system,
        modelfile_messages=_modelfile_messages(model),
        think=_think_value(think),
        count_tokens=count_tokens,
        num_ctx=num_ctx,
    )
    return Prompt(text=rendered.prompt, tool_tag=_tool_tag(model))


def chat_message(message: api.Message) -> ChatMessage:
    return ChatMessage(
        role=message.role.lower(),
        content=message.content,
        images=tuple(base64.b64decode(image) for image in message.images or []),
        thinking=message.thinking or "",
        tool_calls=tuple(
            ChatToolCall(
                name=call.function.name,
                arguments=call.function.arguments,
                id=call.id or "",
                index=call.function.index or 0,
            )
            for call in message.tool_calls or []
        ),
        tool_name=message.tool_name or "",
        tool_call_id=message.tool_call_id or "",
    )


def wire_tool_call(call: ChatToolCall) -> api.ToolCall:
    return api.ToolCall(
        id=call.id or None,
        function=api.ToolCallFunction(index=call.index, name=call.name, arguments=dict(call.arguments)),
    )


def _modelfile_messages(model: ResolvedModel) -> list[ChatMessage]:
    return [
        ChatMessage(role=str(m.get("role", "")), content=str(m.get("content", "")))
        for m in model.content.messages
        if isinstance(m, dict)
    ]


def _tool_tag(model: ResolvedModel) -> str:
    if model.template is None:
        return "{"
    return model.template.tool_call_tag() or "{"


def _think_value(think: Think | None) -> bool | str | None:
    if think is None or not think.is_set:
        return None
    return think.level if think.enabled and think.level not in ("", "medium") else think.enabled
