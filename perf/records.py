"""One record per request: what the load side measures and the analysis side reads.

Records travel as JSON objects (one per line in ``requests.jsonl.gz``, in Locust's event context, between
Locust workers and the master), so they hold plain numbers, strings and lists only.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RequestRecord:
    """A finished request as the client saw it.

    ``t_send`` is wall-clock (epoch seconds, so records from several processes line up); every duration is in
    milliseconds measured with a monotonic clock. ``gaps_ms`` holds every gap between consecutive content
    chunks, so chunk ``i`` arrived at ``t_send + (ttft_ms + sum(gaps_ms[:i])) / 1000``. ``output_tokens`` is the
    server's count when ``tokens_from_server`` is true, else the number of content chunks. ``error`` is None
    for a success and a short reason otherwise.
    """

    api: str
    t_send: float
    e2e_ms: float
    status: int
    ttft_ms: float | None = None
    gaps_ms: list[float] = field(default_factory=list)
    output_tokens: int = 0
    prompt_tokens: int | None = None
    tokens_from_server: bool = False
    error: str | None = None
    prompt_id: str = ""
    users: int = 0
    repeat: int = 0
    target: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def t_done(self) -> float:
        """Wall-clock time the request ended (epoch seconds)."""
        return self.t_send + self.e2e_ms / 1000

    @property
    def tpot_ms(self) -> float | None:
        """(t_last - t_first) / (output_tokens - 1); None when fewer than two tokens or no stream timing."""
        if self.ttft_ms is None or self.output_tokens < 2:
            return None
        return sum(self.gaps_ms) / (self.output_tokens - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; durations rounded to the microsecond, ``t_send`` too (the clocks are no finer)."""
        data = asdict(self)
        data["t_send"] = round(self.t_send, 6)
        data["e2e_ms"] = round(self.e2e_ms, 3)
        data["ttft_ms"] = None if self.ttft_ms is None else round(self.ttft_ms, 3)
        data["gaps_ms"] = [round(g, 3) for g in self.gaps_ms]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def write_records(path: Path, records: Iterable[RequestRecord]) -> int:
    """Write records as JSON lines (gzip-compressed when ``path`` ends in ``.gz``); returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record.to_dict(), separators=(",", ":")) + "\n")
            count += 1
    return count


def read_records(path: Path) -> Iterator[RequestRecord]:
    """Read records written by ``write_records`` (or appended one per line by the Locust listener)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield RequestRecord.from_dict(json.loads(line))


class RecordTail:
    """Follows the ``records-*.jsonl`` files that load processes append to; ``poll`` returns what is new.
    A line still being written (no newline yet) is left for the next poll."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.offsets: dict[Path, int] = {}
        self.records: list[RequestRecord] = []

    def poll(self) -> list[RequestRecord]:
        new: list[RequestRecord] = []
        for path in sorted(self.directory.glob("records-*.jsonl")):
            with open(path, "rb") as fh:
                fh.seek(self.offsets.get(path, 0))
                data = fh.read()
            end = data.rfind(b"\n") + 1
            self.offsets[path] = self.offsets.get(path, 0) + end
            new.extend(RequestRecord.from_dict(json.loads(line)) for line in data[:end].splitlines() if line.strip())
        self.records.extend(new)
        return new
