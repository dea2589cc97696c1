"""``GET /openapi.json``: an OpenAPI 3.1 document of every route, built from the typed wire models.

The routes decode their bodies by hand (:func:`server.protocol.base.parse_body`) so that errors carry Ollama's
exact texts, so FastAPI cannot infer their schemas. Instead :data:`OPERATIONS` lists every route once: its
request model, its success bodies by media type, and the error statuses it can answer. The components come from
the pydantic models (``models_json_schema``), one namespace per dialect (OpenAI's models are prefixed
``OpenAI``, their names overlap Ollama's).

Streams: a native stream (``application/x-ndjson``) is documented by the schema of one line; an OpenAI stream
(``text/event-stream``) by the schema of one event, whose ``data`` is one JSON chunk (or error object) or the
final ``[DONE]``.

Every route must be in :data:`OPERATIONS` (a test compares it with the app's routes). With API keys on, the
document is behind a key like every other API route; ``/``, ``/healthz`` and ``/readyz`` are documented as
open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic.json_schema import models_json_schema
from starlette.responses import JSONResponse

from server import __version__
from server.auth import OPEN_PATHS
from server.lifecycle import WORK_ROUTES
from server.protocol import ollama as api
from server.protocol import openai as oai
from server.protocol.base import WireModel
from server.protocol.json_schema import refine

router = APIRouter()

Dialect = Literal["native", "openai"]
JSON = "application/json"
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
TEXT = "text/plain"

_ERROR_TEXTS = {
    400: "Bad request: the body does not decode, or a field has a wrong value",
    401: "API keys are on and the request has no valid `Authorization: Bearer <key>`",
    404: "The model (or blob) does not exist",
    413: "The JSON body is larger than `CORRAL_MAX_REQUEST_BYTES`",
    500: (
        "The model could not be loaded, its runner crashed, or a registry failed; also, as in Ollama, a `format` "
        'that is neither "json" nor a JSON schema object (`invalid format: ...`)'
    ),
    503: "The server is busy (the waiting queue is full) or draining; see `Retry-After` when draining",
}


@dataclass(frozen=True)
class Operation:
    """One route: ``ok`` maps a success status to its bodies (media type -> model or raw JSON schema);
    ``errors`` are the statuses it answers in the dialect's error shape (401 and the drain's 503 are added
    where they apply)."""

    method: str
    path: str
    summary: str
    dialect: Dialect = "native"
    request: type[WireModel] | None = None
    ok: Mapping[int, Mapping[str, type[WireModel] | dict[str, Any] | None]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()


def _stream_event(*models: str) -> dict[str, Any]:
    """One server-sent event of an OpenAI stream: ``data`` is one of ``models`` as JSON, or ``[DONE]``."""
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in models]
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "description": "One chunk as JSON, an error object as JSON, or `[DONE]` last.",
                "anyOf": [
                    {"const": "[DONE]"},
                    {"type": "string", "contentMediaType": JSON, "contentSchema": {"anyOf": refs}},
                ],
            },
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    }


_PLAIN = {"type": "string"}
_HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "problems": {"type": "array", "items": {"type": "string"}}},
}
_READY = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "draining": {"type": "boolean"},
        "loading": {"type": "array", "items": {"type": "string"}},
        "failed": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_DOCUMENT = {"type": "object", "description": "This document."}
_NONE: Mapping[str, None] = {}

_INFERENCE = (400, 404, 500, 503)

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/", "Liveness as Ollama answers it", ok={200: {TEXT: _PLAIN}}),
    Operation("HEAD", "/", "Liveness as Ollama answers it", ok={200: _NONE}),
    Operation("GET", "/api/version", "Server version", ok={200: {JSON: api.VersionResponse}}),
    Operation("HEAD", "/api/version", "Server version", ok={200: _NONE}),
    Operation("GET", "/api/status", "Cloud status (always disabled)", ok={200: {JSON: api.StatusResponse}}),
    Operation("GET", "/healthz", "Liveness probe", ok={200: {JSON: _HEALTH}, 503: {JSON: _HEALTH}}),
    Operation("HEAD", "/healthz", "Liveness probe", ok={200: _NONE, 503: _NONE}),
    Operation("GET", "/readyz", "Readiness probe", ok={200: {JSON: _READY}, 503: {JSON: _READY}}),
    Operation("HEAD", "/readyz", "Readiness probe", ok={200: _NONE, 503: _NONE}),
    Operation(
        "GET", "/metrics", "Prometheus metrics (404 with CORRAL_METRICS=0)", ok={200: {TEXT: _PLAIN}}, errors=(404,)
    ),
    Operation("GET", "/openapi.json", "This document", ok={200: {JSON: _DOCUMENT}}),
    Operation("GET", "/api/tags", "List local models", ok={200: {JSON: api.ListResponse}}),
    Operation("HEAD", "/api/tags", "List local models", ok={200: _NONE}),
    Operation(
        "POST",
        "/api/show",
        "Show a model",
        request=api.ShowRequest,
        ok={200: {JSON: api.ShowResponse}},
        errors=(400, 404),
    ),
    Operation(
        "POST",
        "/api/create",
        "Create a model",
        request=api.CreateRequest,
        ok={200: {JSON: api.ProgressResponse, NDJSON: api.ProgressResponse}},
        errors=(400, 404, 500),
    ),
    Operation("POST", "/api/copy", "Copy a model", request=api.CopyRequest, ok={200: _NONE}, errors=(400, 404)),
    Operation("DELETE", "/api/delete", "Delete a model", request=api.DeleteRequest, ok={200: _NONE}, errors=(400, 404)),
    Operation("GET", "/api/ps", "Loaded models", ok={200: {JSON: api.ProcessResponse}}),
    Operation(
        "POST",
        "/api/pull",
        "Pull a model from a registry",
        request=api.PullRequest,
        ok={200: {JSON: api.ProgressResponse, NDJSON: api.ProgressResponse}},
        errors=(400, 404, 500),
    ),
    Operation(
        "POST",
        "/api/push",
        "Push a model to a registry",
        request=api.PullRequest,
        ok={200: {JSON: api.ProgressResponse, NDJSON: api.ProgressResponse}},
        errors=(400, 404, 500),
    ),
    Operation("HEAD", "/api/blobs/{digest}", "Whether a blob exists", ok={200: _NONE}, errors=(400, 404)),
    Operation(
        "POST",
        "/api/blobs/{digest}",
        "Upload a blob (the body is its bytes)",
        ok={200: _NONE, 201: _NONE},
        errors=(400,),
    ),
    Operation(
        "POST",
        "/api/generate",
        "Generate a completion",
        request=api.GenerateRequest,
        ok={200: {JSON: api.GenerateResponse, NDJSON: api.GenerateResponse}},
        errors=_INFERENCE,
    ),
    Operation(
        "POST",
        "/api/chat",
        "Chat",
        request=api.ChatRequest,
        ok={200: {JSON: api.ChatResponse, NDJSON: api.ChatResponse}},
        errors=_INFERENCE,
    ),
    Operation(
        "POST",
        "/api/embed",
        "Embed inputs",
        request=api.EmbedRequest,
        ok={200: {JSON: api.EmbedResponse}},
        errors=_INFERENCE,
    ),
    Operation(
        "POST",
        "/api/embeddings",
        "Embed a prompt (legacy)",
        request=api.EmbeddingsRequest,
        ok={200: {JSON: api.EmbeddingsResponse}},
        errors=_INFERENCE,
    ),
    Operation(
        "POST",
        "/v1/chat/completions",
        "OpenAI chat completions",
        dialect="openai",
        request=oai.ChatCompletionRequest,
        ok={200: {JSON: oai.ChatCompletion, SSE: _stream_event("OpenAIChatCompletionChunk", "OpenAIErrorResponse")}},
        errors=_INFERENCE,
    ),
    Operation(
        "POST",
        "/v1/completions",
        "OpenAI completions",
        dialect="openai",
        request=oai.CompletionRequest,
        ok={200: {JSON: oai.Completion, SSE: _stream_event("OpenAICompletionChunk", "OpenAIErrorResponse")}},
        errors=_INFERENCE,
    ),
    Operation(
        "POST",
        "/v1/embeddings",
        "OpenAI embeddings",
        dialect="openai",
        request=oai.EmbeddingRequest,
        ok={200: {JSON: oai.EmbeddingList}},
        errors=_INFERENCE,
    ),
    Operation("GET", "/v1/models", "OpenAI model list", dialect="openai", ok={200: {JSON: oai.ModelList}}),
    Operation(
        "GET", "/v1/models/{model}", "OpenAI model", dialect="openai", ok={200: {JSON: oai.Model}}, errors=(400, 404)
    ),
)

# Models the operations name only inside raw schemas (stream events) or error responses.
_EXTRA_NATIVE_MODELS: tuple[type[WireModel], ...] = (api.ErrorResponse,)
_EXTRA_OPENAI_MODELS: tuple[type[WireModel], ...] = (oai.ChatCompletionChunk, oai.CompletionChunk, oai.ErrorResponse)


Mode = Literal["validation", "serialization"]
Refs = dict[tuple[type[Any], Mode], dict[str, str]]


@router.get("/openapi.json")
async def openapi_document(request: Request) -> JSONResponse:
    app = request.app
    if app.openapi_schema is None:  # built once per app, on first use
        app.openapi_schema = build_document()
    return JSONResponse(app.openapi_schema)


def build_document(operations: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``."""
    schemas, refs = _components(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Corral",
            "version": __version__,
            "description": "Ollama's native API (`/api/*`) and the OpenAI-compatible API (`/v1/*`).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "CORRAL_API_KEYS"}},
        },
        "security": [{}, {"apiKey": []}],
    }


def _operation(op: Operation, refs: Refs) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{op.method.lower()} {op.path}",
        "tags": ["openai" if op.dialect == "openai" else "ollama"],
    }
    if op.path in OPEN_PATHS:
        doc["security"] = []
    parameters = [p.strip("{}") for p in op.path.split("/") if p.startswith("{")]
    if parameters:
        doc["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in parameters
        ]
    if op.request is not None:
        doc["requestBody"] = {"required": True, "content": {JSON: {"schema": refs[(op.request, _REQUEST)]}}}
    elif op.method == "POST":
        doc["requestBody"] = {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    responses: dict[str, Any] = {}
    for status, bodies in op.ok.items():
        responses[str(status)] = {"description": "OK" if status < 300 else "Not healthy or not ready"}
        if bodies and op.method != "HEAD":
            content = {media: {"schema": _body_schema(body, refs)} for media, body in bodies.items()}
            responses[str(status)]["content"] = content
    errors = set(op.errors)
    if op.path not in OPEN_PATHS:
        errors.add(401)
    if op.method == "POST" and op.path in WORK_ROUTES:
        errors.add(503)
    if op.request is not None:  # the body limit gate (server/api/gates.py)
        errors.add(413)
    for status in sorted(errors - set(op.ok)):
        responses[str(status)] = _error_response(status, op, refs)
    doc["responses"] = responses
    return doc


def _error_response(status: int, op: Operation, refs: Refs) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _ERROR_TEXTS[status]}
    if op.method != "HEAD":
        error = oai.ErrorResponse if op.dialect == "openai" else api.ErrorResponse
        response["content"] = {JSON: {"schema": refs[(error, _RESPONSE)]}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def _body_schema(body: type[WireModel] | dict[str, Any] | None, refs: Refs) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    return refs[(body, _RESPONSE)] if body is not None else {}


_REQUEST: Mode = "validation"
_RESPONSE: Mode = "serialization"


def _components(operations: tuple[Operation, ...]) -> tuple[dict[str, Any], Refs]:
    """The JSON schemas of every model ``operations`` name, and the reference to each (model, mode): one
    ``models_json_schema`` call per dialect (names are unique within a dialect, not across: OpenAI's get the
    prefix ``OpenAI``); requests in validation mode, responses in serialization mode."""
    schemas: dict[str, Any] = {}
    refs: Refs = {}
    for dialect, prefix, extra in (("native", "", _EXTRA_NATIVE_MODELS), ("openai", "OpenAI", _EXTRA_OPENAI_MODELS)):
        wanted: dict[tuple[type[WireModel], Mode], None] = dict.fromkeys((model, _RESPONSE) for model in extra)
        for op in operations:
            if op.dialect != dialect:
                continue
            if op.request is not None:
                wanted[(op.request, _REQUEST)] = None
            for bodies in op.ok.values():
                wanted.update(((b, _RESPONSE), None) for b in bodies.values() if isinstance(b, type))
        found, top = models_json_schema(list(wanted), ref_template=f"#/components/schemas/{prefix}{{model}}")
        schemas.update({f"{prefix}{name}": schema for name, schema in top.get("$defs", {}).items()})
        refs.update({(model, mode): dict(ref) for (model, mode), ref in found.items()})
    refine(schemas)
    return schemas, refs
