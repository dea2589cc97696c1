"""``POST /api/embed`` and the legacy ``POST /api/embeddings``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.protocol import ollama as api
from server.protocol.base import GoJSONResponse, parse_body

from .deps import inference, record

router = APIRouter()


@router.post("/api/embed")
async def embed(request: Request) -> GoJSONResponse:
    body = parse_body(api.EmbedRequest, await request.body())
    return GoJSONResponse(await inference(request).embed(body, record(request)))


@router.post("/api/embeddings")
async def embeddings(request: Request) -> GoJSONResponse:
    body = parse_body(api.EmbeddingsRequest, await request.body())
    return GoJSONResponse(await inference(request).embeddings(body, record(request)))
