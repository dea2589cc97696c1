"""Request values → engine parameters: options layering, keep_alive, think, format.

Options are layered as Ollama does: defaults < ``OLLAMA_CONTEXT_LENGTH`` < Modelfile PARAMETERs < request
``options``. Load-time options (num_ctx, num_batch, num_gpu, ...) become ``LoadParams``; a change in them
means a reload, which the scheduler sees as unequal ``LoadParams``. The rest become ``SamplingParams``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.engine import LoadParams, SamplingParams
from server.errors import BadRequest, InternalError, InvalidOption
from server.gocompat.jsonenc import json_type
from server.options import merge, options_from_request, split_load_time
from server.settings import Settings, parse_duration

THINK_LEVELS = ("high", "medium", "low", "max")


def request_options(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Decode a request's ``options``. Ollama reports a wrongly typed option through its generic error path,
    so the error is a 500 with Ollama's text; unknown options are ignored."""
    try:
        options, _ignored = options_from_request(raw or {})
    except InvalidOption as exc:
        raise InternalError(exc.message) from exc
    return options


def layered_options(settings: Settings, modelfile: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {}
    if settings.context_length:
        base["num_ctx"] = settings.context_length
    known_modelfile, _ignored = options_from_request(modelfile)
    return merge(base, known_modelfile, request)


def load_params(
    settings: Settings,
    options: Mapping[str, Any],
    *,
    model_path: Path,
    adapter_paths: list[Path],
    num_parallel: int | None,
    embedding: bool,
) -> LoadParams:
    return LoadParams(
        model_path=str(model_path),
        num_ctx=int(options["num_ctx"]),
        num_batch=int(options["num_batch"]),
        num_gpu=int(options["num_gpu"]),
        main_gpu=int(options["main_gpu"]),
        num_thread=int(options["num_thread"]),
        use_mmap=options["use_mmap"],
        numa=bool(options["numa"]),
        # Ollama gives embedding models a single slot.
        num_parallel=1 if embedding else max(1, num_parallel or settings.num_parallel),
        flash_attention=settings.flash_attention,
        kv_cache_type=settings.kv_cache_type,  # type: ignore[arg-type]
        adapter_paths=tuple(str(p) for p in adapter_paths),
        embedding=embedding,
        max_queue=settings.max_queue,
    )


def sampling_params(
    options: Mapping[str, Any],
    *,
    format: str | dict[str, Any] | None = None,
    logprobs: bool = False,
    top_logprobs: int = 0,
    shift: bool | None = None,
    truncate: bool | None = None,
) -> SamplingParams:
    _load_time, per_request = split_load_time(options)
    accepted = {f.name for f in dataclasses.fields(SamplingParams)}
    params = SamplingParams(
        **{name: value for name, value in per_request.items() if name in accepted},
        format=format or None,
        logprobs=logprobs or top_logprobs > 0,
        top_logprobs=top_logprobs,
        shift=shift is not False,
        truncate=truncate is not False,
    )
    try:
        params.validate()
    except InvalidOption as exc:
        raise InternalError(exc.message) from exc
    return params


MAX_KEEP_ALIVE_SECONDS = (2**63 - 1) / 1e9


def keep_alive_seconds(value: Any) -> float | None:
    """A request's ``keep_alive``: JSON number = seconds, string = Go duration, negative = forever, absent =
    not set. Errors carry Ollama's texts."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRequest("Unsupported type: 'bool'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
    else:
        raise BadRequest(f"Unsupported type: '{json_type(value)}'")
    if math.isnan(seconds):
        raise BadRequest("invalid keep_alive: not a number")
    # Negative means forever; so does anything past Go's longest duration (~292 years), as it would in Ollama.
    return math.inf if seconds < 0 or seconds > MAX_KEEP_ALIVE_SECONDS else seconds


@dataclass(frozen=True)
class Think:
    """The request's ``think``: whether it was sent, whether thinking is on, and the level templates see."""

    is_set: bool
    enabled: bool
    level: str


def think_setting(value: Any) -> Think:
    if value is None:
        return Think(is_set=False, enabled=False, level="")
    if isinstance(value, bool):
        return Think(is_set=True, enabled=value, level="medium" if value else "")
    if isinstance(value, str):
        if value not in THINK_LEVELS:
            raise BadRequest(f'invalid think value: "{value}" (must be "high", "medium", "low", "max", true, or false)')
        return Think(is_set=True, enabled=True, level=value)
    raise BadRequest(f"think must be a boolean or string (got {json_type(value)})")


def output_format(value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """``"json"`` or a schema object; ``null``/``""`` mean none. Anything else is Ollama's runner error (500)."""
    if value is None or value == "":
        return None
    if value == "json" or isinstance(value, dict):
        return value
    raise InternalError(f'invalid format: "{value}"; expected "json" or a valid JSON Schema object')
