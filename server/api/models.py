"""Model management routes: tags, show, create, copy, delete, pull, push. Parse, call the service, render."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from server.protocol import ollama as api
from server.protocol.base import GoJSONResponse, parse_body
from server.service import management
from server.settings import Settings
from server.store.store import Store
from server.streaming import progress_response, run_with_progress

from .deps import inference, settings, store

router = APIRouter()
StoreDep = Annotated[Store, Depends(store)]
SettingsDep = Annotated[Settings, Depends(settings)]


@router.api_route("/api/tags", methods=["GET", "HEAD"])
async def list_models(models: StoreDep) -> GoJSONResponse:
    return GoJSONResponse(await run_in_threadpool(management.list_models, models))


@router.post("/api/show")
async def show_model(request: Request, models: StoreDep) -> GoJSONResponse:
    body = parse_body(api.ShowRequest, await request.body())
    return GoJSONResponse(await run_in_threadpool(management.show_model, models, body))


@router.post("/api/create")
async def create_model(request: Request, models: StoreDep) -> Response:
    body = parse_body(api.CreateRequest, await request.body())
    import_dirs = settings(request).import_dirs

    def work(report: Callable[[api.ProgressResponse], None]) -> str:
        # In the worker thread: the legacy form may hash and import a file; quantizing and converting take long.
        def counts(status: str, digest: str, total: int, completed: int) -> None:
            report(api.ProgressResponse(status=status, digest=digest, total=total, completed=completed))

        def status(text: str) -> None:
            report(api.ProgressResponse(status=text))

        return management.create(models, body, status, import_dirs=import_dirs, counts=counts)

    progress: AsyncIterator[api.ProgressResponse] = run_with_progress(work)
    return await progress_response(progress, stream=body.stream is not False)


@router.post("/api/copy")
async def copy_model(request: Request, models: StoreDep) -> Response:
    body = parse_body(api.CopyRequest, await request.body())
    await run_in_threadpool(management.copy_model, models, body)
    return Response(status_code=200)


@router.delete("/api/delete")
async def delete_model(request: Request, models: StoreDep) -> Response:
    body = parse_body(api.DeleteRequest, await request.body())
    await run_in_threadpool(management.delete_model, models, body)
    return Response(status_code=200)


@router.get("/api/ps")
async def running_models(request: Request) -> GoJSONResponse:
    return GoJSONResponse(inference(request).running())


@router.post("/api/pull")
async def pull_model(request: Request, models: StoreDep, config: SettingsDep) -> Response:
    body = parse_body(api.PullRequest, await request.body())
    cancel = threading.Event()
    return await _transfer(management.pull(models, config, body, cancel), cancel, stream=body.stream is not False)


@router.post("/api/push")
async def push_model(request: Request, models: StoreDep, config: SettingsDep) -> Response:
    body = parse_body(api.PullRequest, await request.body())
    cancel = threading.Event()
    return await _transfer(management.push(models, config, body, cancel), cancel, stream=body.stream is not False)


async def _transfer(work: management.Transfer, cancel: threading.Event, *, stream: bool) -> Response:
    """Stream a pull's or push's progress; a client that goes away cancels the transfer."""

    async def progress() -> AsyncIterator[api.ProgressResponse]:
        try:
            async for item in run_with_progress(work):
                yield item
        finally:
            cancel.set()

    return await progress_response(progress(), stream=stream)
