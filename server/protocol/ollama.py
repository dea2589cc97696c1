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
