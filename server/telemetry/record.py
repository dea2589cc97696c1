"""What one request did, as the request log and the metrics see it.

The access middleware (:mod:`server.telemetry.access`) creates a :class:`RequestRecord` when a request arrives
and puts it on the request's state; the inference service fills in the model, the token counts and a clock
reading per generated token; when the response has been sent the middleware writes the log line and updates
the metrics from it. Recording a token is one ``list.append``: nothing heavier runs per token.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from server.errors import ApiError

STATE_KEY = "corral_record"


@dataclass(slots=True)
class RequestRecord:
    request_id: str = ""
    method: str = ""
    path: str = ""
    route: str = ""
    dialect: str = ""
    started: float = field(default_factory=time.perf_counter)
    model: str = ""
    key_id: str = ""
    status: int = 0
    error: str = ""
    error_text: str = ""
    prompt: str = ""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    token_times: list[float] = field(default_factory=list)
    finished: float = 0.0

    def failed(self, error: BaseException) -> None:
        """The request ended with ``error`` (its class name is what metrics count)."""
        self.error = type(error).__name__
        self.error_text = str(error)

    @contextlib.contextmanager
    def noting_errors(self) -> Iterator[None]:
        """Note an ApiError that ends a stream after it began (the response status is already 200 then)."""
        try:
            yield
        except ApiError as exc:
            self.failed(exc)
            raise

    def token(self) -> None:
        """A generated token reached the service (call per token event)."""
        self.token_times.append(time.perf_counter())

    def generated(self, *, prompt_tokens: int, evaluated: int, output_tokens: int) -> None:
        """The generation ended: ``prompt_tokens`` in the context, ``evaluated`` of them computed (the rest came
        from the prefix cache), ``output_tokens`` sampled."""
        self.prompt_tokens = prompt_tokens
        self.cached_tokens = max(prompt_tokens - evaluated, 0)
        self.output_tokens = output_tokens

    @property
    def ttft(self) -> float | None:
        """Seconds from arrival to the first generated token."""
        return self.token_times[0] - self.started if self.token_times else None

    def inter_token_gaps(self) -> list[float]:
        times = self.token_times
        return [later - earlier for earlier, later in itertools.pairwise(times)]

    @property
    def tpot(self) -> float | None:
        """Mean seconds per output token after the first."""
        times = self.token_times
        return (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None

    @property
    def duration(self) -> float:
        return (self.finished or time.perf_counter()) - self.started


def scope_record(scope: MutableMapping[str, Any]) -> RequestRecord:
    """The record of the request ``scope`` belongs to; a detached one when no access middleware made one (an
    app built without it), so callers never check."""
    state = scope.setdefault("state", {})
    record = state.get(STATE_KEY)
    if not isinstance(record, RequestRecord):
        record = state[STATE_KEY] = RequestRecord()
    return record
