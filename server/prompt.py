"""Prompt construction: a chat or generate request plus the model's templates -> the text the engine evaluates.

Pure functions (no I/O); the behaviour is Ollama's (reference §1.2, §1.3, §6):

* Template choice: the Modelfile TEMPLATE (a Go template) when the model has one, else the GGUF Jinja
  ``tokenizer.chat_template`` (see ``server.chat_template``), else Ollama's default ``{{ .Prompt }}``.
* Go templates get one of three data shapes: *messages* mode when the template mentions ``.Messages``,
  *legacy* mode (``.System/.Prompt/.Response``, rendered turn by turn) otherwise, and *suffix* mode for a
  generate request with a ``suffix``. Before either chat mode, consecutive messages with the same role (except
  ``tool``) are merged with a blank line between them, and the ``System`` value is every system text joined
  the same way.
* Images become ``[img-N]`` tags in message content (replacing an ``[img]`` placeholder, else prefixed); ``N``
  counts the images of the prompt in order, and ``RenderedPrompt.images[N]`` is that image.

    rendered = build_chat_prompt(modelfile.template, None, [ChatMessage("user", "Hi")], modelfile_system="Be brief.")
    rendered.prompt   # the text to tokenize

Every parse or render failure raises ``server.errors.TemplateError``; the caller decides the HTTP status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from server.chat_template import ChatTemplate
from server.gotemplate import (
    Arguments,
    LegacyData,
    Message,
    MessagesData,
    SuffixData,
    Template,
    Tool,
    ToolCall,
    ToolCallFunction,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "ChatMessage",
    "ChatToolCall",
    "RenderedPrompt",
    "ThinkSettings",
    "build_chat_prompt",
    "build_generate_prompt",
    "collate",
    "effective_messages",
    "render_go_template",
]

DEFAULT_TEMPLATE = "{{ .Prompt }}"
"""Ollama's template for a model without a TEMPLATE (``{{ .Response }}`` is appended when parsed)."""


@dataclass(frozen=True)
class ThinkSettings:
    """The ``Think``/``ThinkLevel``/``IsThinkSet`` template values derived from a request's ``think``."""

    think: bool = False
    level: str = ""
    is_set: bool = False

    @classmethod
    def from_request(cls, think: bool | str | None) -> ThinkSettings:
        """``None`` (absent): all off. ``True``: level ``medium``. ``False``: level ``""``. A level string turns
        thinking on at that level. Validating the string (``low|medium|high|max``) is the caller's job."""
        if think is None:
            return cls()
        if isinstance(think, bool):
            return cls(think=think, level="medium" if think else "", is_set=True)
        return cls(think=think != "", level=think, is_set=True)


@dataclass(frozen=True)
class ChatToolCall:
    """A tool call an assistant made (in a request's history, or parsed from model output)."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""
    index: int = 0


@dataclass(frozen=True)
class ChatMessage:
    """One chat message as the request gave it; ``images`` are decoded image bytes."""

    role: str
    content: str = ""
    images: tuple[bytes, ...] = ()
    thinking: str = ""
    tool_calls: tuple[ChatToolCall, ...] = ()
    tool_name: str = ""
    tool_call_id: str = ""


@dataclass(frozen=True)
class RenderedPrompt:
    """The prompt text; ``dropped`` messages were cut by truncation; ``images[N]`` is the image tagged ``[img-N]``."""

    prompt: str
    dropped: int = 0
    images: tuple[bytes, ...] = ()


GoTemplateSource = str | Template | None
ChatTemplateSource = str | ChatTemplate | None
_Render = Callable[[Sequence[ChatMessage]], str]


# --- Go templates --------------------------------------------------------------------------------------------


def collate(messages: Sequence[Message]) -> tuple[str, list[Message]]:
    """Ollama's collation: ``(system, messages)``.

    ``system`` joins every system message's content with ``"\\n\\n"`` (system messages also stay in the list).
    A message whose role equals the previous one's (``tool`` excepted) is merged into it: only its content is
    appended, after a blank line; its images, thinking and tool calls are dropped, as Ollama drops them.
    """
    system = [m.content for m in messages if m.role == "system"]
    merged: list[Message] = []
    for message in messages:
        if merged and merged[-1].role == message.role and message.role != "tool":
            merged[-1] = replace(merged[-1], content=merged[-1].content + "\n\n" + message.content)
        else:
            merged.append(message)
    return "\n\n".join(system), merged


def render_go_template(
    template: Template,
    messages: Sequence[Message],
    tools: Sequence[Tool] = (),
    think: ThinkSettings | None = None,
) -> str:
    """Render a conversation with a Go template, in messages mode or legacy mode (reference §6.2).

    Messages mode (the template mentions ``Messages``) executes once with the collated messages and ``tools``.
    Legacy mode walks the collated messages keeping ``(system, prompt, response)``: a system message first
    renders any pending prompt/response turn, a user message first renders a pending response turn, an assistant
    message sets the response, ``tool`` messages are ignored; a rendered turn resets all three. The last turn is
    rendered with the template cut right after its first ``{{ .Response }}``, so it ends at the generation point
    and a trailing assistant message is a prefill. ``tools`` are not visible in legacy mode.
    """
    think = think or ThinkSettings()
    system, collated = collate(messages)
    if template.references("Messages"):
        data: MessagesData = {
            "System": system,
            "Messages": collated,
            "Tools": tools,
            "Response": "",
            "Think": think.think,
            "ThinkLevel": think.level,
            "IsThinkSet": think.is_set,
        }
        return template.execute(data)

    turn: LegacyData = {
        "System": "",
        "Prompt": "",
        "Response": "",
        "Think": think.think,
        "ThinkLevel": think.level,
        "IsThinkSet": think.is_set,
    }
    out: list[str] = []

    def flush() -> None:
        out.append(template.execute(dict(turn)))
        turn["System"] = turn["Prompt"] = turn["Response"] = ""

    for message in collated:
        if message.role == "system":
            if turn["Prompt"] or turn["Response"]:
                flush()
            turn["System"] = message.content
        elif message.role == "user":
            if turn["Response"]:
                flush()
            turn["Prompt"] = message.content
        elif message.role == "assistant":
            turn["Response"] = message.content
    out.append(template.truncated_after_response().execute(turn))
    return "".join(out)


def _go_message(message: ChatMessage) -> Message:
    calls = tuple(
        ToolCall(
            id=call.id,
            function=ToolCallFunction(name=call.name, arguments=Arguments(call.arguments), index=call.index),
        )
        for call in message.tool_calls
    )
    return Message(
        role=message.role,
        content=message.content,
        thinking=message.thinking,
        images=message.images,
        tool_calls=calls,
        tool_name=message.tool_name,
        tool_call_id=message.tool_call_id,
    )


def _parse_go(template: GoTemplateSource) -> Template:
    if isinstance(template, Template):
        return template
    return Template.parse(template or DEFAULT_TEMPLATE)


# --- building prompts ----------------------------------------------------------------------------------------


def render_jinja_conversation(
    template: ChatTemplate,
    messages: Sequence[ChatMessage],
    tools: Sequence[Mapping[str, Any]] = (),
    *,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """Render a conversation with a GGUF chat template up to where the model generates.

    Messages take the shape chat templates are written against (Hugging Face / OpenAI): ``role``, ``content``,
    and when set ``reasoning_content`` (thinking), ``tool_calls`` (``[{"id"?, "type": "function", "function":
    {"name", "arguments": {...}}}]``), ``name`` (a tool result's tool) and ``tool_call_id``. A trailing assistant
    message without tool calls is a prefill: the rest is rendered with the generation prompt and its content
    appended, so the model continues it instead of a closed turn.
    """
    prefill = ""
    if messages and messages[-1].role == "assistant" and not messages[-1].tool_calls:
        prefill = messages[-1].content
        messages = messages[:-1]
    text = template.render(
        [_jinja_message(m) for m in messages],
        tools=tools,
        add_generation_prompt=True,
        bos_token=bos_token,
        eos_token=eos_token,
    )
    return text + prefill


def _jinja_message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.thinking:
        out["reasoning_content"] = message.thinking
    if message.tool_calls:
        out["tool_calls"] = [
            {
                **({"id": call.id} if call.id else {}),
                "type": "function",
                "function": {"name": call.name, "arguments": dict(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_name:
        out["name"] = message.tool_name
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def _renderer(
    template: GoTemplateSource,
    chat_template: ChatTemplateSource,
    tools: Sequence[Mapping[str, Any]],
    think: ThinkSettings,
    bos_token: str,
    eos_token: str,
) -> _Render:
    """How this model renders a message list: its Go template, else its Jinja template, else the default."""
    if not template and chat_template:
        jinja = chat_template if isinstance(chat_template, ChatTemplate) else ChatTemplate(chat_template)

        def render_jinja(messages: Sequence[ChatMessage]) -> str:
            return render_jinja_conversation(jinja, messages, tools, bos_token=bos_token, eos_token=eos_token)

        return render_jinja
    go = _parse_go(template)
    go_tools = [Tool.from_json(tool) for tool in tools]

    def render(messages: Sequence[ChatMessage]) -> str:
        return render_go_template(go, [_go_message(m) for m in messages], go_tools, think)

    return render


def effective_messages(
    messages: Sequence[ChatMessage],
    modelfile_system: str = "",
    modelfile_messages: Sequence[ChatMessage] = (),
) -> list[ChatMessage]:
    """Modelfile MESSAGEs followed by the request's messages, with the Modelfile SYSTEM in front unless empty or
    the request's first message is a system message (then the request's system replaces it)."""
    out = [*modelfile_messages, *messages]
    if modelfile_system and not (messages and messages[0].role == "system"):
        out.insert(0, ChatMessage(role="system", content=modelfile_system))
    return out


def _tag_images(messages: Sequence[ChatMessage]) -> tuple[list[ChatMessage], tuple[bytes, ...]]:
    images: list[bytes] = []
    tagged: list[ChatMessage] = []
    for message in messages:
        prefix = ""
        content = message.content
        for image in message.images:
            tag = f"[img-{len(images)}]"
            if "[img]" in content:
                content = content.replace("[img]", tag, 1)
            else:
                prefix += tag
            images.append(image)
        tagged.append(replace(message, content=prefix + content) if message.images else message)
    return tagged, tuple(images)


def _fit(
    messages: Sequence[ChatMessage],
    render: _Render,
    count_tokens: Callable[[str], int],
    num_ctx: int,
    image_tokens: int,
) -> int:
    """Where the kept messages start: walking back from the end, the earliest start whose render (with the system
    messages of the dropped prefix in front) still fits ``num_ctx``; the walk stops at the first that does not.
    The last message is always kept. Sizes are measured before image tags are inserted, as Ollama does.

    The whole conversation is tried first: when it fits (the usual case) that costs one render and one count.
    """

    def size(i: int) -> int:
        candidate = [m for m in messages[:i] if m.role == "system"] + list(messages[i:])
        return count_tokens(render(candidate)) + image_tokens * sum(len(m.images) for m in messages[i:])

    if size(0) <= num_ctx:
        return 0
    # Sizes only shrink as the start moves later, so the earliest fitting start is found by bisection: a long
    # conversation costs O(log n) renders, not one per dropped message.
    lo, hi = 1, len(messages) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if size(mid) <= num_ctx:
            hi = mid
        else:
            lo = mid + 1
    return hi


def build_chat_prompt(
    template: GoTemplateSource,
    chat_template: ChatTemplateSource,
    messages: Sequence[ChatMessage],
    tools: Sequence[Mapping[str, Any]] = (),
    *,
    modelfile_system: str = "",
    modelfile_messages: Sequence[ChatMessage] = (),
    think: bool | str | None = None,
    count_tokens: Callable[[str], int] | None = None,
    num_ctx: int = 0,
    image_tokens: int = 0,
    bos_token: str = "",
    eos_token: str = "",
) -> RenderedPrompt:
    """The prompt for a chat request (reference §1.3).

    ``template`` is the Modelfile TEMPLATE (text or parsed; ``None``/``""`` when the model has none) and
    ``chat_template`` the GGUF Jinja template, used only without a Go template; with neither, the default
    ``{{ .Prompt }}`` applies. ``tools`` are the request's tool objects as JSON. ``think`` is the request's
    value (see ``ThinkSettings``). ``bos_token``/``eos_token`` are given to Jinja templates.

    The conversation is ``effective_messages(messages, modelfile_system, modelfile_messages)``. With
    ``count_tokens`` (the request's ``truncate``), the oldest messages are dropped until the prompt fits
    ``num_ctx`` tokens, keeping every system message and always the last message (see ``_fit``); each image
    counts ``image_tokens`` extra. ``RenderedPrompt.dropped`` says how many messages went.
    """
    render = _renderer(template, chat_template, tools, ThinkSettings.from_request(think), bos_token, eos_token)
    conversation = effective_messages(messages, modelfile_system, modelfile_messages)
    start = 0
    if count_tokens is not None and len(conversation) > 1:
        start = _fit(conversation, render, count_tokens, num_ctx, image_tokens)
    kept_system = [m for m in conversation[:start] if m.role == "system"]
    tagged, images = _tag_images(conversation[start:])
    prompt = render(kept_system + tagged)
    return RenderedPrompt(prompt=prompt, dropped=start - len(kept_system), images=images)


def build_generate_prompt(
    template: GoTemplateSource,
    chat_template: ChatTemplateSource,
    prompt: str,
    *,
    system: str = "",
    modelfile_system: str = "",
    modelfile_messages: Sequence[ChatMessage] = (),
    context: str | None = None,
    suffix: str = "",
    images: Sequence[bytes] = (),
    think: bool | str | None = None,
    bos_token: str = "",
    eos_token: str = "",
) -> RenderedPrompt:
    """The prompt for a non-raw generate request (reference §1.2); ``raw`` requests bypass this.

    ``template`` is the request's ``template`` when given (a parse failure raises ``TemplateError``), else the
    Modelfile TEMPLATE; ``chat_template`` and the default apply as in ``build_chat_prompt``.

    With a ``suffix`` (and a non-empty ``prompt``) the Go template (or the default) is executed once with only
    ``Prompt``, ``Suffix``, ``Response: ""`` and the think values. Otherwise the conversation is: a system
    message (``system``, else ``modelfile_system``, none if both are empty), the Modelfile MESSAGEs unless
    ``context`` was given, and a user message with ``prompt`` and ``images``, rendered like chat without tools.
    ``context`` is the detokenized text of the request's ``context`` (``""`` for an empty list, ``None`` when
    absent) and is put in front of the rendered text.
    """
    settings = ThinkSettings.from_request(think)
    if suffix and prompt:
        data: SuffixData = {
            "Prompt": prompt,
            "Suffix": suffix,
            "Response": "",
            "Think": settings.think,
            "ThinkLevel": settings.level,
            "IsThinkSet": settings.is_set,
        }
        return RenderedPrompt(prompt=(context or "") + _parse_go(template).execute(data), images=tuple(images))

    render = _renderer(template, chat_template, (), settings, bos_token, eos_token)
    conversation: list[ChatMessage] = []
    if system or modelfile_system:
        conversation.append(ChatMessage(role="system", content=system or modelfile_system))
    if context is None:
        conversation.extend(modelfile_messages)
    conversation.append(ChatMessage(role="user", content=prompt, images=tuple(images)))
    tagged, tagged_images = _tag_images(conversation)
    return RenderedPrompt(prompt=(context or "") + render(tagged), images=tagged_images)
