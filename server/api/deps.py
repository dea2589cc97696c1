"""Request-scoped access to what ``create_app`` built: nothing is reached through module globals."""

from __future__ import annotations

from fastapi import Request

from server.service.inference import Inference
from server.settings import Settings
from server.store.store import Store
from server.telemetry.record import RequestRecord, scope_record


def store(request: Request) -> Store:
    result: Store = request.app.state.store
    return result


def settings(request: Request) -> Settings:
    result: Settings = request.app.state.settings
    return result


def inference(request: Request) -> Inference:
    result: Inference = request.app.state.inference
    return result


def record(request: Request) -> RequestRecord:
    """What the request log and metrics will say of this request (filled in by the service)."""
    return scope_record(request.scope)
