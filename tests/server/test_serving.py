"""``corral serve`` as a process, as Kubernetes runs it: SIGTERM drains (streams in flight finish complete, new
work gets 503, readiness fails at once, exit 0), the drain deadline ends what is left with the dialect's error
line, a second signal exits at once; and the request log it writes, in JSON and in text."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.auth import key_id
from tests.server.conftest import REPO, free_port, seed_store

pytestmark = pytest.mark.slow

MODEL = "smollm2:135m"
PROMPT = "Tell me a story about a lighthouse keeper."
KEY = "drain-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


class ServerProcess:
    """``python -m server`` (what ``corral serve`` runs) on a free port; its log goes to a file."""

    def __init__(self, models: Path, log: Path, **env: str) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = log
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "CORRAL_"))}
        environ.update({"OLLAMA_HOST": self.url.removeprefix("http://"), "OLLAMA_MODELS": str(models), **env})
        with log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "server"], cwd=REPO, env=environ, stderr=out)
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, log.read_text()
            try:
                if httpx.get(self.url, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=300, headers=AUTH)

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout)

    def access_lines(self) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]
        return [line for line in lines if line["logger"] == "corral.access"]


@pytest.fixture
def start(tmp_path: Path, smollm2_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    processes: list[ServerProcess] = []
    models = tmp_path / "models"
    seed_store(models, smollm2_path)

    def start_one(**env: str) -> ServerProcess:
        process = ServerProcess(models, tmp_path / f"server-{len(processes)}.log", CORRAL_API_KEYS=KEY, **env)
        processes.append(process)
        return process

    yield start_one
    for process in processes:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


class Stream(threading.Thread):
    """One streaming request in a thread; ``lines`` holds every object it received."""

    def __init__(self, server: ServerProcess, path: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.server, self.path, self.body = server, path, body
        self.lines: list[Any] = []
        self.started = threading.Event()
        self.cut: httpx.TransportError | None = None

    def run(self) -> None:
        try:
            with self.server.client() as client, client.stream("POST", self.path, json=self.body) as response:
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    item = json.loads(line.removeprefix("data: ")) if line != "data: [DONE]" else "[DONE]"
                    self.lines.append(item)
                    self.started.set()
        except httpx.TransportError as exc:  # the server went away mid-stream
            self.cut = exc
        finally:
            self.started.set()


def generate_body(num_predict: int) -> dict[str, Any]:
    return {"model": MODEL, "prompt": PROMPT, "options": {"temperature": 0, "num_predict": num_predict}}


def test_sigterm_drains_streams_refuses_new_work_and_exits_zero(start: Callable[..., ServerProcess]) -> None:
    server = start(OLLAMA_NUM_PARALLEL="2", CORRAL_LOG_FORMAT="json", CORRAL_DRAIN_TIMEOUT="300s")
    with server.client() as client:
        alone = client.post("/api/generate", json={**generate_body(48), "stream": False}).json()["response"]
    streams = [Stream(server, "/api/generate", generate_body(48)) for _ in range(2)]
    for stream in streams:
        stream.start()
    assert all(stream.started.wait(120) for stream in streams)
    server.signal()
    with server.client() as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 503:  # at once: the signal is handled on the next loop turn
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.get("/readyz").json() == {"status": "not ready", "draining": True}
        refused = client.post("/api/generate", json=generate_body(4))
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        assert "shutting down" in refused.json()["error"]
        oai = client.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
        assert oai.status_code == 503 and "shutting down" in oai.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200  # draining is not dying: no restart wanted
    for stream in streams:
        stream.join(300)
        assert stream.lines[-1]["done"] is True
        assert "".join(line["response"] for line in stream.lines) == alone
    assert server.wait() == 0
    lines = server.access_lines()
    generated = [line for line in lines if line["route"] == "/api/generate" and line["status"] == 200]
    assert len(generated) == 3
    for line in generated:
        assert line["model"] == MODEL and line["key_id"] == key_id(KEY)
        assert line["output_tokens"] > 0 and line["prompt_tokens"] > 0 and line["ttft_ms"] > 0
        assert len(line["request_id"]) == 32 and "prompt" not in line
    refusals = [line for line in lines if line["status"] == 503 and line["route"] != "/readyz"]
    assert {line["error"] for line in refusals} == {"ShuttingDown"} and len(refusals) == 2
    text = server.log.read_text()
    assert KEY not in text and PROMPT not in text


def test_drain_deadline_ends_streams_with_the_dialects_error(start: Callable[..., ServerProcess]) -> None:
    server = start(CORRAL_DRAIN_TIMEOUT="1s", OLLAMA_NUM_PARALLEL="2", OLLAMA_DEBUG="1")
    native = Stream(server, "/api/generate", generate_body(100_000))
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 100_000, "stream": True}
    oai = Stream(server, "/v1/chat/completions", body)
    for stream in (native, oai):
        stream.start()
        assert stream.started.wait(120)
    server.signal()
    native.join(120)
    oai.join(120)
    assert "shutting down" in native.lines[-1]["error"] and not native.lines[-2]["done"]
    assert oai.lines[-1] != "[DONE]" and "shutting down" in oai.lines[-1]["error"]["message"]
    assert server.wait() == 0
    text = server.log.read_text()
    assert f"key_id={key_id(KEY)}" in text
    ended = [line for line in text.splitlines() if "corral.access: POST /api/generate 200" in line]
    assert len(ended) == 1 and "error=ShuttingDown" in ended[0]  # the log says why the stream ended
    assert PROMPT in text  # OLLAMA_DEBUG logs the rendered prompt


def test_a_second_signal_exits_at_once(start: Callable[..., ServerProcess]) -> None:
    server = start(CORRAL_DRAIN_TIMEOUT="600s")
    stream = Stream(server, "/api/generate", generate_body(100_000))
    stream.start()
    assert stream.started.wait(120)
    server.signal(signal.SIGTERM)
    with server.client() as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 503:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    started = time.monotonic()
    server.signal(signal.SIGINT)
    server.wait(60)  # far sooner than the 600 s drain
    assert time.monotonic() - started < 60
    stream.join(60)
    assert not stream.is_alive() and stream.cut is not None  # cut, not drained
