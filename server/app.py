"""``create_app``: the one place where the server's parts are built and wired together.

Everything a request needs (settings, the model store, the inference service with its scheduler) lives on
``app.state``; nothing is a module global, so two apps can run side by side in one process (tests do).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from server.api import blobs, chat, embed, generate, health, models, openai, openapi, system
from server.api.errors import render_error
from server.api.gates import BodyLimit, DrainGate, KeyGate
from server.auth import ApiKeys
from server.catalog import Catalog, CatalogEntry, load_catalog
from server.engine import LoadParams
from server.errors import ApiError, BadRequest
from server.http_policy import HttpPolicy, is_loopback
from server.lifecycle import Lifecycle
from server.protocol.base import GoJSONResponse
from server.protocol.ollama import GenerateRequest
from server.runner import ModelRunner, RemoteModel
from server.scheduler import Scheduler
from server.service.inference import EngineScheduler, Inference
from server.settings import Settings
from server.store.names import display_name
from server.store.store import Store
from server.telemetry.access import AccessLog, Routes
from server.telemetry.metrics import Metrics
from server.telemetry.record import scope_record

log = logging.getLogger(__name__)


def create_app(settings: Settings, loader: Callable[[LoadParams], ModelRunner] = RemoteModel.load) -> FastAPI:
    """Build the ASGI app for ``settings``.

    At start the store is pruned of stale files and, with ``CORRAL_CATALOG``, the catalog's preload models
    start loading (in the background: the server answers at once). ``loader`` loads a model: by default in a
    runner process of its own (``server.runner``), so that nothing llama.cpp does can take the API down. At
    shutdown every model is unloaded and every runner stopped.

    Around the routes, outermost first: the request log and metrics (:mod:`server.telemetry`), Ollama's HTTP
    policy (CORS, Host guard), API keys (:mod:`server.auth`), the drain gate (:mod:`server.lifecycle`), and the
    request body limit (``CORRAL_MAX_REQUEST_BYTES``); see :mod:`server.api.gates`.
    """
    store = Store(settings.models, noprune=settings.noprune)
    catalog = load_catalog(settings.catalog) if settings.catalog else None
    keys = ApiKeys(settings.api_keys, settings.api_keys_file)
    lifecycle = Lifecycle()
    metrics = Metrics() if settings.metrics else None
    for entry in _preloaded(catalog):
        lifecycle.expect_preload(str(entry.name))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        removed = store.prune()
        if removed:
            log.info("pruned %d stale files from %s", len(removed), settings.models)
        scheduler: EngineScheduler = Scheduler(
            loader,
            max_loaded=settings.max_loaded_models or 3,
            default_keep_alive=settings.keep_alive,
            load_timeout=settings.load_timeout,
            on_load=(lambda name, seconds: metrics.model_loaded(display_name(name), seconds)) if metrics else None,
        )
        overrides = {str(e.name): e.num_parallel for e in catalog.entries if e.num_parallel} if catalog else {}
        app.state.inference = Inference(store, scheduler, settings, num_parallel=overrides, lifecycle=lifecycle)
        preloads = [
            asyncio.create_task(_preload(app.state.inference, lifecycle, str(e.name))) for e in _preloaded(catalog)
        ]
        yield
        for task in preloads:
            task.cancel()
        await scheduler.close()

    app = FastAPI(title="Corral", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.store = store
    app.state.lifecycle = lifecycle
    app.state.metrics = metrics
    routers = (
        system.router,
        health.router,
        models.router,
        blobs.router,
        generate.router,
        chat.router,
        embed.router,
        openai.router,
        openapi.router,
    )
    for router in routers:
        app.include_router(router)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(DrainGate, lifecycle=lifecycle)
    app.add_middleware(KeyGate, keys=keys, metrics_open=not settings.metrics_auth)
    app.add_middleware(HttpPolicy, origins=settings.origins, guard_host=is_loopback(settings.host.host))
    app.add_middleware(AccessLog, routes=Routes(r for router in routers for r in router.routes), metrics=metrics)
    app.add_exception_handler(ApiError, _native_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


def _preloaded(catalog: Catalog | None) -> list[CatalogEntry]:
    return [entry for entry in catalog.entries if entry.preload] if catalog else []


async def _preload(inference: Inference, lifecycle: Lifecycle, name: str) -> None:
    """Load a model as an empty generate request would; a failure is logged (and keeps the server not ready),
    the server keeps running."""
    try:
        async for _ in inference.generate(GenerateRequest(model=name)):
            pass
    except Exception as exc:
        log.warning("could not preload %s: %s", name, exc)
        lifecycle.preload_done(name, error=str(exc) or type(exc).__name__)
    else:
        lifecycle.preload_done(name)


async def _native_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    scope_record(request.scope).failed(exc)
    return render_error(request.url.path, exc)


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
