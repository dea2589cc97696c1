"""Locust users that read streamed responses line by line and report the LLM metrics.

Importing this module imports Locust, which monkey-patches the process (gevent): only the ``locust`` command,
``perf/locustfile.py`` and ``perf/loadgen.py`` import it, never the planner or the tests' own process.

Each request reports, besides Locust's own row for its path (whose time is the whole stream, and whose
length is the output tokens): ``TTFT``, ``TPOT``, ``E2E`` and, unless ``--no-itl-rows``, one ``ITL`` row per
gap between content chunks, all under the request type of the API (``chat``, ``openai-chat`` ...). The full
``RequestRecord`` travels in the ``E2E`` row's context, where ``perf.recorder`` collects it.

Lines are read with geventhttpclient's ``readline`` on the private ``FastResponse._response``: Locust's public
``iter_lines``/``iter_content`` wait for 1024 bytes and would batch tokens (measured TTFT 190 ms for a true
52 ms). Keep that access here, in ``_read_lines``, and pin geventhttpclient.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from locust import FastHttpUser, constant, events, task
from locust.contrib.fasthttp import ResponseContextManager

from perf.apis import APIS, Api
from perf.records import RequestRecord
from perf.stream import StreamReader
from perf.workload import Workload


@events.init_command_line_parser.add_listener
def add_arguments(parser: argparse.ArgumentParser, **_: Any) -> None:
    """The workload options, shared by ``locust -f perf/locustfile.py`` and every worker."""
    group = parser.add_argument_group("Corral workload")
    group.add_argument("--model", default="smollm2:135m", help="model name sent in every request")
    group.add_argument("--input-words", type=int, default=128, help="filler words per prompt (about one token each)")
    group.add_argument("--output-tokens", type=int, default=64, help="num_predict / max_tokens per request")
    group.add_argument("--seed", type=int, default=0, help="seed of the prompt filler and of sampling")
    group.add_argument("--no-stream", action="store_true", help="ask for whole responses instead of streams")
    group.add_argument("--ignore-eos", action="store_true", help="send ignore_eos (OpenAI dialect, llama-server)")
    group.add_argument("--records-dir", default="", help="write one JSON line per request to DIR/records-PID.jsonl")
    group.add_argument("--no-itl-rows", action="store_true", help="do not fire one ITL row per token gap")
    group.add_argument("--target-name", default="", help="label stored in every record (compare runs)")
    group.add_argument("--slo", default="", help="thresholds that set exit code 3, e.g. ttft_p95=1000ms,errors=1%%")


def workload_of(options: argparse.Namespace | None) -> Workload:
    """The workload the parsed options describe (defaults where an option is absent)."""
    get = (lambda name, default: getattr(options, name, default)) if options is not None else (lambda n, d: d)
    return Workload(
        model=get("model", "smollm2:135m"),
        input_words=get("input_words", 128),
        output_tokens=get("output_tokens", 64),
        seed=get("seed", 0),
        stream=not get("no_stream", False),
        ignore_eos=get("ignore_eos", False),
    )


class StreamUser(FastHttpUser):
    """One closed-loop stream: send, read to the end, send again. Subclasses set ``api``."""

    abstract = True
    api: ClassVar[Api]
    wait_time = constant(0)
    concurrency = 1  # one stream needs one connection; the default pool is 10
    network_timeout = 600.0  # queueing can push TTFT past Locust's 60 s default; a timeout is an error
    connection_timeout = 60.0

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.workload = workload_of(options)
        self.itl_rows = not getattr(options, "no_itl_rows", False)
        self.target = getattr(options, "target_name", "")
        self.sent = 0
        self.prefix = f"{os.getpid()}.{id(self):x}"  # unique per live user in this process
        # A server with API keys on: the same variable the corral CLI and the ollama client read.
        key = os.environ.get("OLLAMA_API_KEY", "")
        self.headers = {"Accept-Encoding": "identity", **({"Authorization": f"Bearer {key}"} if key else {})}

    @task
    def request(self) -> None:
        self.sent += 1
        prompt_id = f"{self.prefix}.{self.sent}"
        record = self.send(prompt_id)
        self.report(record)

    def send(self, prompt_id: str) -> RequestRecord:
        """Send one request and read it to the end; the Locust row for the path is fired here."""
        runner = self.environment.runner
        users = getattr(self.environment.parsed_options, "num_users", None) or (runner.user_count if runner else 0)
        reader = StreamReader(
            self.api,
            t0=time.perf_counter(),
            t_send=time.time(),
            stream=self.workload.stream and self.api.generates,
            prompt_id=prompt_id,
            users=int(users or 0),
            target=self.target,
        )
        body = self.workload.body(self.api, prompt_id)
        with self.client.post(
            self.api.path,
            json=body,
            stream=True,
            catch_response=True,
            headers=self.headers,
        ) as response:
            error = _read(response, reader)
            record = reader.finish(time.perf_counter(), response.status_code or 0, error)
            response.request_meta["response_time"] = record.e2e_ms
            response.request_meta["response_length"] = record.output_tokens
            if record.error is None:
                response.success()
            else:
                response.failure(record.error)
        return record

    def report(self, record: RequestRecord) -> None:
        """Fire the metric rows; the record rides in the E2E row's context."""
        fire = self.environment.events.request.fire
        kind = self.api.name
        if record.ok and record.ttft_ms is not None:
            fire(request_type=kind, name="TTFT", response_time=record.ttft_ms, response_length=0, exception=None)
            if self.itl_rows:
                for gap in record.gaps_ms:
                    fire(request_type=kind, name="ITL", response_time=gap, response_length=0, exception=None)
            if (tpot := record.tpot_ms) is not None:
                fire(request_type=kind, name="TPOT", response_time=tpot, response_length=0, exception=None)
        fire(
            request_type=kind,
            name="E2E",
            response_time=record.e2e_ms,
            response_length=record.output_tokens,
            exception=None if record.ok else RuntimeError(record.error),
            context={"record": record.to_dict()},
        )


def _read(response: ResponseContextManager, reader: StreamReader) -> str | None:
    """Feed the body to ``reader`` as it arrives; returns a transport error's text, or None."""
    transport_error = getattr(response, "error", None)
    if transport_error is not None and not response.status_code:
        return f"{type(transport_error).__name__}: {transport_error}"
    try:
        if not 200 <= response.status_code < 300:
            _ = response.content  # read the error body so the connection can be reused
            return None
        if not reader.stream:
            reader.feed(response.content or b"", time.perf_counter())
            return None
        for line in _read_lines(response):
            reader.feed(line, time.perf_counter())
    except Exception as exc:  # a reset or timeout mid-stream: the request failed, the user goes on
        return f"{type(exc).__name__}: {exc}"
    return None


def _read_lines(response: ResponseContextManager) -> Iterator[bytes]:
    raw = response._response
    if raw is None:
        return
    while line := raw.readline(b"\n"):
        yield line


class ChatUser(StreamUser):
    """Native ``/api/chat`` (NDJSON)."""

    api = APIS["chat"]


class GenerateUser(StreamUser):
    """Native ``/api/generate`` (NDJSON)."""

    api = APIS["generate"]


class OpenAIChatUser(StreamUser):
    """OpenAI ``/v1/chat/completions`` (SSE, usage from ``stream_options.include_usage``)."""

    api = APIS["openai-chat"]


class OpenAICompletionUser(StreamUser):
    """OpenAI ``/v1/completions`` (SSE)."""

    api = APIS["openai-completions"]


class EmbedUser(StreamUser):
    """Native ``/api/embed``: one whole response per request, E2E only."""

    api = APIS["embed"]


USER_CLASSES: dict[str, type[StreamUser]] = {
    cls.api.name: cls for cls in (ChatUser, GenerateUser, OpenAIChatUser, OpenAICompletionUser, EmbedUser)
}
