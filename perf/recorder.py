"""The listener that keeps one ``RequestRecord`` per request, in every process that runs users.

Each load-generating process (a local runner or each Locust worker) appends its records to its own
``records-<pid>.jsonl``, line-buffered, so nothing depends on the master's last stats exchange before it
quits; ``corral perf run`` merges the files. In-flight requests cut off at the end of a run are never
recorded (Locust kills them with ``GreenletExit``, which is neither a success nor a failure).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from locust.env import Environment


class Recorder:
    """Collects the records carried by ``E2E`` rows. ``directory`` empty: keep them in ``records`` only."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self.path = Path(directory) / f"records-{os.getpid()}.jsonl" if directory else None
        self._file: TextIO | None = None

    def attach(self, environment: Environment) -> None:
        environment.events.request.add_listener(self.on_request)
        environment.events.quitting.add_listener(self.close)

    def on_request(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        record = (context or {}).get("record")
        if record is None:
            return
        self.records.append(record)
        if self.path is not None:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed on quit
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self, **_: Any) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
