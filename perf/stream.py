"""Reading one response, line by line as it arrives, into a ``RequestRecord``.

The caller owns the clock and the socket: it passes every line with the monotonic time it was read
(``time.perf_counter()``), so the same code serves Locust users and tests that replay recorded lines. Native
streams are NDJSON and end with an object holding ``"done": true``; OpenAI streams are server-sent events that
end with ``data: [DONE]``. A non-streamed response is fed as one line holding the whole body.
"""

from __future__ import annotations

import json
from typing import Any

from perf.apis import Api
from perf.records import RequestRecord


class StreamReader:
    """Builds the record of one request. ``t0`` is the monotonic time the request was sent, ``t_send`` the same
    instant in wall-clock seconds. Call ``feed`` per line, then ``finish`` once."""

    def __init__(self, api: Api, *, t0: float, t_send: float, stream: bool = True, **labels: Any) -> None:
        self.api = api
        self.stream = stream
        self.t0 = t0
        self.record = RequestRecord(api=api.name, t_send=t_send, e2e_ms=0.0, status=0, **labels)
        self.done = False
        self._last: float | None = None
        self._chunks = 0

    def feed(self, line: bytes | str, now: float) -> None:
        """Take one line read at monotonic time ``now``; the first error seen sticks."""
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        text = text.strip()
        if not text or self.record.error is not None:
            return
        if self.api.dialect == "openai" and self.stream:
            if not text.startswith("data:"):
                return  # event names, ids and ":" comments carry no data
            text = text[5:].strip()
            if text == "[DONE]":
                self.done = True
                return
        try:
            chunk = json.loads(text)
        except ValueError:
            self.record.error = f"unparseable line: {text[:80]!r}"
            return
        if not isinstance(chunk, dict):
            self.record.error = f"unexpected JSON: {text[:80]!r}"
            return
        self._take(chunk, now)

    def _take(self, chunk: dict[str, Any], now: float) -> None:
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            self.record.error = f"error in response: {message}"
            return
        if self.api.text(chunk):
            self._chunks += 1
            if self.stream:
                if self._last is None:
                    self.record.ttft_ms = (now - self.t0) * 1000
                else:
                    self.record.gaps_ms.append((now - self._last) * 1000)
                self._last = now
        self._count_tokens(chunk)
        native_end = self.api.dialect == "native" and (chunk.get("done") is True or not self.api.generates)
        if native_end or (self.api.dialect == "openai" and not self.stream):
            self.done = True

    def _count_tokens(self, chunk: dict[str, Any]) -> None:
        if self.api.dialect == "native":
            if "eval_count" in chunk:
                self.record.output_tokens = int(chunk["eval_count"])
                self.record.tokens_from_server = True
            if "prompt_eval_count" in chunk:
                self.record.prompt_tokens = int(chunk["prompt_eval_count"])
            return
        usage = chunk.get("usage")
        if isinstance(usage, dict) and (usage.get("completion_tokens") or usage.get("prompt_tokens")):
            self.record.output_tokens = int(usage.get("completion_tokens") or 0)
            self.record.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.record.tokens_from_server = True

    def finish(self, now: float, status: int, error: str | None = None) -> RequestRecord:
        """Close the record at monotonic time ``now`` with the HTTP ``status``; ``error`` is a transport error
        (timeout, reset) if one ended the request. A 2xx without the final object counts as an error."""
        record = self.record
        record.e2e_ms = (now - self.t0) * 1000
        record.status = status
        if record.error is None:
            if error is not None:
                record.error = error
            elif not 200 <= status < 300:
                record.error = f"HTTP {status}"
            elif not self.done:
                ending = "[DONE]" if self.api.dialect == "openai" and self.stream else "its final object"
                record.error = f"stream ended without {ending}"
        if not record.tokens_from_server and self.api.generates:
            record.output_tokens = self._chunks
        return record
