"""``create_app``: the one place where the server's parts are built and wired together.

Everything a request needs (settings, the model store) lives on ``app.state``; nothing is a module global,
so two apps can run side by side in one process (tests do).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from server.api import blobs, models, system
from server.errors import ApiError, BadRequest
from server.protocol.base import GoJSONResponse
from server.settings import Settings
from server.store.store import Store

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the ASGI app for ``settings``. The store is pruned of stale files when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        removed = app.state.store.prune()
        if removed:
            log.info("pruned %d stale files from %s", len(removed), settings.models)
        yield

    app = FastAPI(title="Corral", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.store = Store(settings.models, noprune=settings.noprune)
    for router in (system.router, models.router, blobs.router):
        app.include_router(router)
    app.add_exception_handler(ApiError, _native_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


async def _native_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return GoJSONResponse({"error": exc.message}, status_code=exc.status_code)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # Ollama's router (gin) answers unknown routes and wrong methods in plain text.
    if exc.status_code == 404:
        return PlainTextResponse("404 page not found", status_code=404)
    if exc.status_code == 405:
        return PlainTextResponse("405 method not allowed", status_code=405)
    return GoJSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)


async def _validation_error(request: Request, exc: Exception) -> Response:
    return await _native_error(request, BadRequest(str(exc)))
