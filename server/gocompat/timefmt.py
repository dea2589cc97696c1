"""``time.Time`` as Ollama's JSON prints it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

__all__ = ["now_iso", "rfc3339"]


def rfc3339(moment: datetime) -> str:
    """Go's RFC 3339 with sub-seconds, trailing zeros trimmed; ``Z`` for UTC (and naive times), else the
    local offset, as Go prints ``time.Time`` values."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    offset = moment.utcoffset()
    if offset is None or offset == timedelta(0):
        return text + "Z"
    seconds = int(offset.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    return f"{text}{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def now_iso() -> str:
    """``created_at``: UTC with nanoseconds, trailing zeros trimmed, as Go prints ``time.Now().UTC()``."""
    now = time.time_ns()
    stamp = datetime.fromtimestamp(now // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{now % 1_000_000_000:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"
