"""Shared by the /v1 conversions: ids, times, usage, errors, stop lists, Go type names."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from server.errors import ApiError, BadRequest
from server.protocol import openai as oai
from server.service.events import Metrics


def chat_completion_id() -> str:
    return f"chatcmpl-{random.randrange(999)}"


def completion_id() -> str:
    return f"cmpl-{random.randrange(999)}"


def unix_time(created_at: str) -> int:
    """Seconds since the epoch of a native ``created_at`` (RFC 3339)."""
    return int(datetime.fromisoformat(created_at).timestamp())


def to_error(exc: ApiError) -> oai.ErrorResponse:
    """``{"error": {"message", "type", "param", "code"}}`` with the native text and the class's OpenAI type."""
    return oai.ErrorResponse(error=oai.Error(message=exc.message, type=exc.openai_type))


def check_n(n: int | None) -> None:
    if n is not None and n != 1:
        raise BadRequest(f"invalid value for 'n': {n} (only one choice per request is supported)")


def stop_sequences(value: Any, *, strict: bool) -> list[str] | None:
    """``stop`` as a list: a string is one stop word. Non-string list items are skipped by chat and
    rejected by completions (``strict``), as Ollama does; other types are ignored."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return None
    stops = []
    for item in value:
        if isinstance(item, str):
            stops.append(item)
        elif strict:
            raise BadRequest(f"invalid type for 'stop' field: {go_type(item)}")
    return stops


def to_usage(metrics: Metrics | None) -> oai.Usage:
    """Token counts of a generation; zeros for answers that generated nothing."""
    prompt = metrics.prompt_eval_count if metrics else 0
    completion = metrics.eval_count if metrics else 0
    return oai.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def go_type(value: Any) -> str:
    """Go's ``%T`` of a decoded JSON value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"
