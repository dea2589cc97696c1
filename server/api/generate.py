"""``POST /api/generate``: parse, call the inference service, stream NDJSON or answer once."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from server.native_render import GenerateRenderer
from server.protocol import ollama as api
from server.protocol.base import parse_body
from server.streaming import inference_response

from .deps import inference, record

router = APIRouter()


@router.post("/api/generate")
async def generate(request: Request) -> Response:
    body = parse_body(api.GenerateRequest, await request.body())
    events = inference(request).generate(body, record(request))
    return await inference_response(request, events, GenerateRenderer(body.model), stream=body.stream is not False)
