"""The loaded models as operators see them: the rows ``/metrics`` renders and the checks ``/healthz`` makes.

Each loaded model's runner is probed (:meth:`~server.runner.RemoteModel.step_stats`), all at once and each with
a deadline: a runner that does not answer in time, or whose compute thread has been inside one step for longer
than ``CORRAL_STEP_TIMEOUT``, is wedged, and the server is not live. A model busy with long but progressing
steps is live.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from server.engine import StepStats
from server.errors import ApiError
from server.runner import ModelRunner
from server.service.inference import Inference
from server.service.models import ResolvedModel
from server.store.names import display_name
from server.telemetry.metrics import ModelState

PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Snapshot:
    models: list[ModelState]
    waiting: dict[str, int]
    """Requests waiting for a lease, by display name."""


async def snapshot(inference: Inference, timeout: float = PROBE_TIMEOUT_S) -> Snapshot:
    """Every loaded model with its runner's step statistics (None for a runner that did not answer)."""
    rows = inference.scheduler.running()
    stats = await asyncio.gather(*(_probe(row.runner, timeout) for row in rows))
    waiting = {display_name(name): count for name, count in inference.scheduler.waiting().items()}
    models = []
    for row, steps in zip(rows, stats, strict=True):
        model: ResolvedModel = row.info
        name = model.name.display
        models.append(
            ModelState(
                name=name,
                active=row.active,
                waiting=waiting.pop(name, 0),
                slots=row.runner.num_parallel,
                memory_bytes=row.size,
                steps=steps,
            )
        )
    return Snapshot(models, waiting)


def liveness_problems(models: list[ModelState], step_timeout: float) -> list[str]:
    """Why the server is not live (empty when it is)."""
    problems = []
    for model in models:
        if model.steps is None:
            problems.append(f"{model.name}: the model runner does not answer")
        elif model.steps.running_for > step_timeout:
            problems.append(
                f"{model.name}: one compute step has run for {model.steps.running_for:.0f}s "
                f"(CORRAL_STEP_TIMEOUT is {step_timeout:g}s)"
            )
    return problems


async def _probe(runner: ModelRunner, timeout: float) -> StepStats | None:
    with contextlib.suppress(TimeoutError, ApiError):
        return await asyncio.wait_for(runner.step_stats(), timeout)
    return None
