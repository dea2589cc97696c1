"""``HEAD``/``POST /api/blobs/:digest``: check for and upload a blob, verified against its digest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from server.errors import BlobNotFound
from server.service import management
from server.store.blobs import Digest
from server.store.store import Store

from .deps import store

router = APIRouter()
StoreDep = Annotated[Store, Depends(store)]


@router.head("/api/blobs/{digest}")
async def check_blob(digest: str, models: StoreDep) -> Response:
    parsed = Digest.parse(digest)
    if not await run_in_threadpool(models.blobs.exists, parsed):
        raise BlobNotFound(f'blob "{digest}" not found')
    return Response(status_code=200)


@router.post("/api/blobs/{digest}")
async def upload_blob(digest: str, request: Request, models: StoreDep) -> Response:
    created = await management.upload_blob(models, Digest.parse(digest), request.stream())
    return Response(status_code=201 if created else 200)
