"""Wire models of Ollama's native API (``/api/*``), named as Ollama names them.

Optional fields are ``None`` when absent so that responses omit them, as Go's ``omitempty`` does; requests
keep ``None`` to tell "not sent" from an explicit value (Ollama uses pointers for the same reason).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from server.protocol.base import WireModel


class VersionResponse(WireModel):
    version: str


class CloudStatus(WireModel):
    disabled: bool
    source: str


class StatusResponse(WireModel):
    """``/api/status``: Ollama reports whether its cloud models are enabled; Corral has none."""

    cloud: CloudStatus


class ModelDetails(WireModel):
    """``details`` of ``/api/tags``, ``/api/show`` and ``/api/ps`` (from the config blob)."""

    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class ListModel(WireModel):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: ModelDetails


class ListResponse(WireModel):
    models: list[ListModel]


class ShowRequest(WireModel):
    go_name = "ShowRequest"

    model: str = ""
    name: str = Field(default="", description="Deprecated alias of model.")
    verbose: bool = False
    system: str | None = Field(default=None, description="Shown instead of the model's SYSTEM when given.")
    options: dict[str, Any] | None = Field(default=None, description="Merged into the generated Modelfile.")


class Tensor(WireModel):
    name: str
    type: str
    shape: list[int]


class ShowResponse(WireModel):
    license: str | None = None
    modelfile: str | None = None
    parameters: str | None = None
    template: str | None = None
    system: str | None = None
    details: ModelDetails
    messages: list[dict[str, Any]] | None = None
    model_info: dict[str, Any] = Field(default_factory=dict, description="Always present; clients require it.")
    tensors: list[Tensor] | None = None
    capabilities: list[str] | None = None
    modified_at: str


class CreateRequest(WireModel):
    """The current JSON form of ``/api/create``; ``modelfile``/``path`` is the legacy form, still accepted."""

    go_name = "CreateRequest"

    model: str = ""
    name: str = Field(default="", description="Deprecated alias of model.")
    from_: str | None = Field(default=None, alias="from", description="An existing model to build on.")
    files: dict[str, str] | None = Field(default=None, description="GGUF file name -> uploaded blob digest.")
    adapters: dict[str, str] | None = Field(default=None, description="LoRA file name -> uploaded blob digest.")
    template: str | None = None
    system: str | None = None
    license: str | list[str] | None = None
    parameters: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = None
    requires: str | None = None
    quantize: str | None = None
    quantization: str | None = Field(default=None, description="Deprecated alias of quantize.")
    stream: bool | None = Field(default=None, description="Absent means true.")
    modelfile: str | None = Field(default=None, description="Legacy: the Modelfile text, parsed by the server.")
    path: str | None = Field(default=None, description="Legacy: a server-side Modelfile path.")


class ProgressResponse(WireModel):
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


class PullRequest(WireModel):
    """``/api/pull`` and ``/api/push`` (same fields)."""

    go_name = "PullRequest"

    model: str = ""
    name: str = Field(default="", description="Deprecated alias of model.")
    insecure: bool = False
    stream: bool | None = None


class CopyRequest(WireModel):
    go_name = "CopyRequest"

    source: str = ""
    destination: str = ""


class DeleteRequest(WireModel):
    go_name = "DeleteRequest"

    model: str = ""
    name: str = Field(default="", description="Deprecated alias of model.")


class ErrorResponse(WireModel):
    error: str


# -- inference -------------------------------------------------------------------------------------------


class ToolCallFunction(WireModel):
    index: int | None = None
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict, description="An object, never a JSON string.")


class ToolCall(WireModel):
    id: str | None = None
    function: ToolCallFunction


class Message(WireModel):
    go_name = "Message"

    role: str
    content: str = ""
    thinking: str | None = None
    images: list[str] | None = Field(default=None, description="Base64 images (vision models only).")
    tool_calls: list[ToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None


class TopLogprob(WireModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class Logprob(WireModel):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] | None = None


class _InferenceRequest(WireModel):
    """Fields shared by generate and chat."""

    model: str = ""
    stream: bool | None = Field(default=None, description="Absent means true.")
    format: str | dict[str, Any] | None = Field(default=None, description='"json" or a JSON schema.')
    keep_alive: Any = Field(default=None, description="Seconds, or a Go duration string; checked by the service.")
    options: dict[str, Any] | None = None
    think: Any = Field(default=None, description="true/false or low, medium, high, max; checked by the service.")
    truncate: bool | None = Field(default=None, description="Drop oldest turns to fit num_ctx (default true).")
    shift: bool | None = Field(default=None, description="Shift the context when it fills (default true).")
    logprobs: bool = False
    top_logprobs: int = 0
    debug_render_only: bool = Field(default=False, alias="_debug_render_only")


class GenerateRequest(_InferenceRequest):
    go_name = "GenerateRequest"

    prompt: str = ""
    suffix: str = ""
    system: str | None = None
    template: str | None = None
    context: list[int] | None = Field(default=None, description="Deprecated: tokens of an earlier exchange.")
    raw: bool = False
    images: list[str] | None = None


class ChatRequest(_InferenceRequest):
    go_name = "ChatRequest"

    messages: list[Message] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None


class GenerateResponse(WireModel):
    """A chunk (``done`` false) or the final object of ``/api/generate``; metrics only on the final one."""

    model: str
    created_at: str
    response: str = ""
    thinking: str | None = None
    done: bool
    done_reason: str | None = None
    context: list[int] | None = Field(default=None, description="Prompt and output tokens (not in raw mode).")
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    logprobs: list[Logprob] | None = None
    debug_info: dict[str, Any] | None = Field(default=None, alias="_debug_info")


class ChatResponse(WireModel):
    """A chunk or the final object of ``/api/chat``; the field order is Ollama's, hence no shared base."""

    model: str
    created_at: str
    message: Message
    done: bool
    done_reason: str | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    logprobs: list[Logprob] | None = None
    debug_info: dict[str, Any] | None = Field(default=None, alias="_debug_info")


class EmbedRequest(WireModel):
    go_name = "EmbedRequest"

    model: str = ""
    input: Any = Field(default=None, description="A string or a list of strings; checked by the service.")
    truncate: bool | None = Field(default=None, description="Absent means true.")
    dimensions: int | None = None
    keep_alive: Any = None
    options: dict[str, Any] | None = None


class EmbedResponse(WireModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None


class EmbeddingsRequest(WireModel):
    go_name = "EmbeddingRequest"

    model: str = ""
    prompt: str = ""
    keep_alive: Any = None
    options: dict[str, Any] | None = None


class EmbeddingsResponse(WireModel):
    embedding: list[float]


class ProcessModel(WireModel):
    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: str
    size_vram: int
    context_length: int


class ProcessResponse(WireModel):
    models: list[ProcessModel]
