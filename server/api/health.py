"""``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus): what the cluster watches.

What each checks is in :mod:`server.lifecycle` and :mod:`server.service.status`; both answer 200 or 503 with a
JSON body saying what is wrong, so ``kubectl describe`` and a human with ``curl`` see the reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from server.lifecycle import Lifecycle
from server.protocol.base import GoJSONResponse
from server.service import status
from server.telemetry.metrics import CONTENT_TYPE, Metrics

from .deps import inference, settings

router = APIRouter()


def _lifecycle(request: Request) -> Lifecycle:
    result: Lifecycle = request.app.state.lifecycle
    return result


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz(request: Request) -> Response:
    snapshot = await status.snapshot(inference(request))
    problems = status.liveness_problems(snapshot.models, settings(request).step_timeout)
    if problems:
        return GoJSONResponse({"status": "unhealthy", "problems": problems}, status_code=503)
    return GoJSONResponse({"status": "ok"})


@router.api_route("/readyz", methods=["GET", "HEAD"])
async def readyz(request: Request) -> Response:
    ready, body = _lifecycle(request).readiness()
    return GoJSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    registry: Metrics | None = request.app.state.metrics
    if registry is None:  # CORRAL_METRICS=0
        raise HTTPException(404)
    snapshot = await status.snapshot(inference(request))
    return Response(registry.render(snapshot.models, snapshot.waiting), media_type=CONTENT_TYPE)
