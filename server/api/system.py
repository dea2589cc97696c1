"""``/`` and ``/api/version``: liveness and version, as Ollama answers them."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import PlainTextResponse

from server import __version__
from server.protocol import ollama as api
from server.protocol.base import GoJSONResponse

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], response_class=PlainTextResponse)
async def root() -> PlainTextResponse:
    return PlainTextResponse("Ollama is running")


@router.api_route("/api/version", methods=["GET", "HEAD"])
async def version() -> GoJSONResponse:
    return GoJSONResponse(api.VersionResponse(version=__version__))


@router.get("/api/status")
async def status() -> GoJSONResponse:
    return GoJSONResponse(api.StatusResponse(cloud=api.CloudStatus(disabled=True, source="default")))
