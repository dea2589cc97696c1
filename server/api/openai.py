"""The OpenAI-compatible API (``/v1/*``): parse, convert (``server.openai_compat``), call the same inference
service as ``/api/*``, render its events in OpenAI's shapes. Streams are server-sent events ending in
``data: [DONE]``; an error after the stream began is one last ``data: {"error": {...}}`` event.

Errors before a response are rendered by ``error_response`` (wired in ``create_app`` for paths under
``/v1/``): ``{"error": {"message", "type", "param", "code"}}`` with the native status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TypeVar

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from server import openai_compat as compat
from server.disconnect import while_connected
from server.errors import ApiError, BadRequest, InternalError
from server.protocol import ollama as api
from server.protocol import openai as oai
from server.protocol.base import GoJSONResponse, WireModel, parse_body
from server.service import management
from server.service.events import Event, fold
from server.streaming import first_item, sse_done, sse_event

from .deps import inference, record, store

log = logging.getLogger(__name__)
router = APIRouter()

M = TypeVar("M", bound=WireModel)


class OpenAIJSONResponse(GoJSONResponse):
    """Go-encoded JSON with the plain content type Ollama's ``/v1`` writers set."""

    media_type = "application/json"


def error_response(exc: ApiError) -> Response:
    return OpenAIJSONResponse(compat.to_error(exc), status_code=exc.status_code)


async def _parse(model: type[M], request: Request) -> M:
    body = await request.body()
    if not body.strip():
        raise BadRequest("EOF")  # what Ollama's JSON binding answers for an empty body
    return parse_body(model, body)


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    body = await _parse(oai.ChatCompletionRequest, request)
    events = inference(request).chat(compat.from_chat_completion_request(body), record(request))
    first = await first_item(request, events)
    if not body.stream:
        reply = await while_connected(request, fold(first, events))
        completion = compat.to_chat_completion(
            reply, model=body.model, id=compat.chat_completion_id(), created=int(time.time())
        )
        return OpenAIJSONResponse(completion)
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    stream = compat.ChatCompletionStream(
        model=body.model, id=compat.chat_completion_id(), created=int(time.time()), include_usage=include_usage
    )
    return sse_response(first, events, stream.feed)


@router.post("/v1/completions")
async def completions(request: Request) -> Response:
    body = await _parse(oai.CompletionRequest, request)
    native = compat.from_completion_request(body)
    echo = native.prompt if body.echo else ""
    events = inference(request).generate(native, record(request))
    first = await first_item(request, events)
    if not body.stream:
        reply = await while_connected(request, fold(first, events))
        completion = compat.to_completion(
            reply, model=body.model, id=compat.completion_id(), created=int(time.time()), echo=echo
        )
        return OpenAIJSONResponse(completion)
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    stream = compat.CompletionStream(
        model=body.model, id=compat.completion_id(), created=int(time.time()), include_usage=include_usage, echo=echo
    )
    return sse_response(first, events, stream.feed)


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> Response:
    body = await _parse(oai.EmbeddingRequest, request)
    native = await inference(request).embed(compat.from_embedding_request(body), record(request))
    return OpenAIJSONResponse(compat.to_embedding_list(native, model=body.model, encoding_format=body.encoding_format))


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    return OpenAIJSONResponse(compat.to_model_list(await run_in_threadpool(management.list_models, store(request))))


@router.get("/v1/models/{model}")
async def retrieve_model(request: Request, model: str) -> Response:
    shown = await run_in_threadpool(management.show_model, store(request), api.ShowRequest(model=model))
    return OpenAIJSONResponse(compat.to_model(model, shown.modified_at))


def sse_response(
    first: Event, rest: AsyncIterator[Event], render: Callable[[Event], Sequence[oai.OpenAIModel]]
) -> Response:
    """Stream ``render``ed events as server-sent events. ``first`` was taken before answering, so an error up
    to there got a real status; a later one becomes the final event (the one place /v1 streams render it)."""

    async def body() -> AsyncIterator[bytes]:
        try:
            for chunk in render(first):
                yield sse_event(chunk)
            async for event in rest:
                for chunk in render(event):
                    yield sse_event(chunk)
        except ApiError as exc:
            yield sse_event(compat.to_error(exc))
            return
        except Exception as exc:
            log.exception("generation failed")
            yield sse_event(compat.to_error(InternalError(str(exc))))
            return
        yield sse_done()

    return StreamingResponse(body(), headers={"Content-Type": "text/event-stream"})
