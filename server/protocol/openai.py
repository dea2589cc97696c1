"""Wire models of the OpenAI-compatible API (``/v1/*``), with OpenAI's names and Ollama's field choices.

Requests are decoded like the native ones (strict types, unknown fields ignored: the openai SDKs send many
optional fields Corral does not use). Fields whose shape varies (``content``, ``stop``, ``tool_choice``,
``input``) stay ``Any`` and are checked by the pure conversions in ``server/openai_compat/``, which raise
errors with Ollama's texts.

Responses follow Ollama's Go structs: a field is omitted when ``None`` unless the class lists it in
``keep_null`` (OpenAI clients expect ``"finish_reason": null``, ``"param": null`` and so on).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from server.protocol import ollama as api
from server.protocol.base import WireModel


class OpenAIModel(WireModel):
    """Base of the ``/v1`` responses: ``None`` fields are omitted except those named in ``keep_null``."""

    keep_null: ClassVar[frozenset[str]] = frozenset()

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None and name not in self.keep_null:
                continue
            out[field.alias or name] = _wire(value)
        return out


def _wire(value: Any) -> Any:
    if isinstance(value, WireModel):
        return value.to_wire()
    if isinstance(value, list):
        return [_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    return value


# -- errors ------------------------------------------------------------------------------------------------


class Error(OpenAIModel):
    keep_null = frozenset({"param", "code"})

    message: str
    type: str
    param: Any = None
    code: str | None = None


class ErrorResponse(OpenAIModel):
    error: Error


# -- requests ----------------------------------------------------------------------------------------------


class StreamOptions(WireModel):
    include_usage: bool = False


class Reasoning(WireModel):
    effort: str = ""


class JsonSchema(WireModel):
    name: str | None = None
    schema_: Any = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(WireModel):
    type: str = ""
    json_schema: JsonSchema | None = None


class ToolCallFunction(WireModel):
    name: str = ""
    arguments: Any = Field(default=None, description="A JSON string (OpenAI); an object is accepted too.")


class ToolCall(WireModel):
    id: str = ""
    index: int | None = None
    type: str = "function"
    function: ToolCallFunction = Field(default_factory=ToolCallFunction)


class Message(WireModel):
    go_package = "openai"
    go_name = "Message"

    role: str = ""
    content: Any = Field(default=None, description="A string or a list of content parts.")
    reasoning: str = ""
    tool_calls: list[ToolCall] | None = None
    name: str = ""
    tool_call_id: str = ""


class ChatCompletionRequest(WireModel):
    go_package = "openai"
    go_name = "ChatCompletionRequest"

    model: str = ""
    messages: list[Message] = Field(default_factory=list)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    stop: Any = None
    temperature: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    top_p: float | None = None
    n: int | None = None
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    reasoning: Reasoning | None = None
    reasoning_effort: str | None = None
    logprobs: bool | None = None
    top_logprobs: int = 0
    user: str | None = None
    # Ollama extensions.
    keep_alive: Any = None
    think: Any = None
    debug_render_only: bool = Field(default=False, alias="_debug_render_only")


class CompletionRequest(WireModel):
    go_package = "openai"
    go_name = "CompletionRequest"

    model: str = ""
    prompt: Any = Field(default="", description="A string, or a list holding one string.")
    suffix: str = ""
    max_tokens: int | None = None
    seed: int | None = None
    stop: Any = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float = 0.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logprobs: int | None = None
    echo: bool = False
    n: int | None = None
    user: str | None = None
    # Ollama extensions.
    keep_alive: Any = None
    debug_render_only: bool = Field(default=False, alias="_debug_render_only")


class EmbeddingRequest(WireModel):
    go_package = "openai"
    go_name = "EmbedRequest"

    model: str = ""
    input: Any = None
    dimensions: int | None = None
    encoding_format: str = ""
    user: str | None = None
    # Ollama extension.
    keep_alive: Any = None


# -- responses ---------------------------------------------------------------------------------------------


class Usage(OpenAIModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ResponseFunction(OpenAIModel):
    name: str
    arguments: str = Field(description="The arguments object as a JSON string.")


class ResponseToolCall(OpenAIModel):
    id: str = ""
    index: int = 0
    type: str = "function"
    function: ResponseFunction


class ChoiceLogprobs(OpenAIModel):
    content: list[api.Logprob]


class ResponseMessage(OpenAIModel):
    role: str = "assistant"
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ResponseToolCall] | None = None


class Choice(OpenAIModel):
    keep_null = frozenset({"finish_reason"})

    index: int = 0
    message: ResponseMessage
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(OpenAIModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str = "fp_ollama"
    choices: list[Choice]
    usage: Usage = Field(default_factory=Usage)
    debug_info: dict[str, Any] | None = Field(default=None, alias="_debug_info")


class Delta(OpenAIModel):
    """A streamed delta: every field is omitted when unset, so the finish chunk's delta is ``{}``."""

    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ResponseToolCall] | None = None


class ChunkChoice(OpenAIModel):
    keep_null = frozenset({"finish_reason"})

    index: int = 0
    delta: Delta
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(OpenAIModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str = "fp_ollama"
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionLogprobs(OpenAIModel):
    """OpenAI's legacy completion logprobs: parallel lists, one entry per generated token."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(OpenAIModel):
    keep_null = frozenset({"finish_reason"})

    text: str
    index: int = 0
    finish_reason: str | None = None
    logprobs: CompletionLogprobs | None = None


class Completion(OpenAIModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str = "fp_ollama"
    choices: list[CompletionChoice]
    usage: Usage = Field(default_factory=Usage)
    debug_info: dict[str, Any] | None = Field(default=None, alias="_debug_info")


class CompletionChunk(OpenAIModel):
    """A streamed completion: Ollama names the object ``text_completion`` for chunks too."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    choices: list[CompletionChoice]
    model: str
    system_fingerprint: str = "fp_ollama"
    usage: Usage | None = None


class Embedding(OpenAIModel):
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str = Field(description="Floats, or base64 of little-endian float32 values.")
    index: int


class EmbeddingUsage(OpenAIModel):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingList(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage = Field(default_factory=EmbeddingUsage)


class Model(OpenAIModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(OpenAIModel):
    """``data`` is ``null`` when no model is installed, as Ollama sends it."""

    keep_null = frozenset({"data"})

    object: Literal["list"] = "list"
    data: list[Model] | None = None
