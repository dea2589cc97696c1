"""A request's lifetime belongs to it alone: a bad request never reaches another client's stream, a client
that goes away frees its slot (streaming or not), and a remote client cannot make the server read its files.

Real server on loopback with smollm2; the victims' outputs are compared with the same requests run alone.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import LiveServer, seed_store

pytestmark = pytest.mark.slow

MODEL = "smollm2:135m"
GREEDY = {"temperature": 0, "num_predict": 48}


@pytest.fixture
def start(start_server: Callable[..., LiveServer], tmp_path: Path, smollm2_path: Path) -> Callable[..., LiveServer]:
    """Start a server with smollm2 in a fresh store; ``env`` holds extra variables by their full names."""
    stores = itertools.count()

    def start_one(**env: str) -> LiveServer:
        models = tmp_path / f"models-{next(stores)}"
        seed_store(models, smollm2_path)
        return start_server(models, variables=env)

    return start_one


def active_leases(server: LiveServer) -> int:
    """Requests holding the model right now, read from the running app's scheduler."""
    app: Any = server.server.config.app
    return sum(row.active for row in app.state.inference.scheduler.running())


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def streamed_text(client: httpx.Client, body: dict[str, Any], started: threading.Event | None = None) -> str:
    parts = []
    with client.stream("POST", "/api/generate", json={**body, "stream": True}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            chunk = json.loads(line)
            assert "error" not in chunk, chunk
            parts.append(chunk["response"])
            if started is not None:
                started.set()
    assert chunk["done"] is True
    return "".join(parts)


def test_an_out_of_vocabulary_context_gets_400_and_the_stream_beside_it_is_untouched(
    start: Callable[..., LiveServer],
) -> None:
    server = start(OLLAMA_NUM_PARALLEL="4")
    victim = {"model": MODEL, "prompt": "Count from one to twenty in words.", "options": GREEDY}
    with server.client() as client:
        alone = streamed_text(client, victim)
        started = threading.Event()
        result: dict[str, str] = {}
        thread = threading.Thread(target=lambda: result.setdefault("text", streamed_text(client, victim, started)))
        thread.start()
        assert started.wait(60)
        attack = client.post(
            "/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False, "context": [99999999]}
        )
        thread.join(120)
    assert attack.status_code == 400
    assert "invalid token id 99999999" in attack.json()["error"]
    assert result["text"] == alone


def test_an_out_of_vocabulary_context_is_refused_before_the_model_loads(start: Callable[..., LiveServer]) -> None:
    server = start()
    with server.client() as client:
        for context in ([49152], [-1], [1, 2, 2**40]):
            attack = client.post("/api/generate", json={"model": MODEL, "prompt": "hi", "context": context})
            assert attack.status_code == 400
            assert attack.json() == {
                "error": f"invalid token id {context[-1]} in context: the model's vocabulary has 49152 tokens"
            }
        assert client.get("/api/ps").json() == {"models": []}  # checked in the plan: nothing was loaded


# Greedy without a repeat penalty counts on and on: the hung-up requests ask for 100,000 tokens (many minutes on
# any CPU, with the context shifting), so a slot freed within the wait below was freed by the hang-up.
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"
COUNTER = "counter:latest"


def post_and_hang_up(server: LiveServer, path: str, body: dict[str, Any]) -> None:
    """Send a non-streaming request on a raw socket, wait until it holds the model, then close the socket."""
    payload = json.dumps(body)
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    sock.sendall(f"{head}Content-Length: {len(payload)}\r\n\r\n{payload}".encode())
    wait_for(lambda: active_leases(server) == 1)
    sock.close()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/api/generate",
            {
                "model": MODEL,
                "prompt": COUNTING,
                "raw": True,
                "stream": False,
                "options": {"temperature": 0, "num_predict": 100_000},
            },
        ),
        # The OpenAI SDK's default call is not streamed: a client timeout or cancelled job hangs up like this.
        ("/v1/completions", {"model": COUNTER, "prompt": COUNTING, "temperature": 0, "max_tokens": 100_000}),
    ],
    ids=["native", "openai"],
)
def test_a_non_streaming_client_that_disconnects_frees_its_slot(
    start: Callable[..., LiveServer], path: str, body: dict[str, Any]
) -> None:
    server = start(OLLAMA_NUM_PARALLEL="1")
    with server.client() as client:  # load first, so the slot is the only thing the next request waits for
        parameters = {"repeat_penalty": 1.0}
        created = client.post("/api/create", json={"model": COUNTER, "from": MODEL, "parameters": parameters})
        assert created.status_code == 200, created.text
        assert client.post("/api/generate", json={"model": COUNTER}).status_code == 200
    post_and_hang_up(server, path, body)
    # Freed at the next decode step: far sooner than the 100,000 tokens it asked for.
    wait_for(lambda: active_leases(server) == 0, timeout=120)
    with server.client() as client:
        reply = client.post(
            "/api/generate", json={"model": COUNTER, "prompt": "Hi", "stream": False, "options": GREEDY}
        )
    assert reply.status_code == 200 and reply.json()["eval_count"] > 0


def test_a_load_reply_releases_its_lease_at_once(start: Callable[..., LiveServer]) -> None:
    server = start()
    with server.client() as client:
        assert client.post("/api/generate", json={"model": MODEL}).json()["done_reason"] == "load"
        assert active_leases(server) == 0
        assert client.post("/api/chat", json={"model": MODEL, "messages": []}).json()["done_reason"] == "load"
        assert active_leases(server) == 0


@pytest.mark.parametrize("source", ["/etc/passwd", "/nonexistent/model.gguf", "../../../etc/hosts", "~/x.gguf"])
def test_a_legacy_modelfile_cannot_read_server_files(start: Callable[..., LiveServer], source: str) -> None:
    server = start()
    with server.client() as client:
        reply = client.post("/api/create", json={"model": "probe", "modelfile": f"FROM {source}", "stream": False})
    assert reply.status_code == 400
    # The same answer whether the file exists or not: nothing to probe with.
    assert reply.json()["error"] == (
        f"FROM {source!r} names a file on the server, which this server does not read (CORRAL_IMPORT_DIRS is not "
        "set): upload the file as a blob (`corral create -f Modelfile` does) or use the `files` field"
    )


def test_a_legacy_modelfile_imports_from_an_allowed_directory(
    start: Callable[..., LiveServer], smollm2_path: Path, tmp_path: Path
) -> None:
    server = start(CORRAL_IMPORT_DIRS=str(smollm2_path.parent))
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(smollm2_path.read_bytes()[:1024])
    with server.client() as client:
        ok = client.post(
            "/api/create", json={"model": "imported", "modelfile": f"FROM {smollm2_path}", "stream": False}
        )
        refused = client.post("/api/create", json={"model": "other", "modelfile": f"FROM {outside}", "stream": False})
        names = [m["name"] for m in client.get("/api/tags").json()["models"]]
    assert ok.status_code == 200, ok.text
    assert "imported:latest" in names
    assert refused.status_code == 400 and "outside CORRAL_IMPORT_DIRS" in refused.json()["error"]
    assert "other:latest" not in names


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "smollm2:135m", "prompt": "hi", "keep_alive": NaN}',
        b'{"model": "smollm2:135m", "prompt": "hi", "options": {"temperature": Infinity}}',
        b'{"model": "smollm2:135m", "prompt": "hi", "options": {"top_p": 1e999}}',
        b'{"model": "smollm2:135m", "prompt": "hi", "options": {"seed": 99999999999999999999999}}',
    ],
)
def test_numbers_json_does_not_have_are_refused(start: Callable[..., LiveServer], raw: bytes) -> None:
    server = start()
    with server.client() as client:
        reply = client.post("/api/generate", content=raw)
        assert reply.status_code == 400, reply.text
        after = client.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False, "options": GREEDY})
    assert after.status_code == 200 and after.json()["done"] is True


@pytest.mark.parametrize("keep_alive", [1e300, "2562047h47m16.854775807s", -1, "99999999999h"])
def test_extreme_keep_alive_values_leave_the_model_usable(start: Callable[..., LiveServer], keep_alive: Any) -> None:
    server = start()
    with server.client() as client:
        first = client.post(
            "/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False, "keep_alive": keep_alive}
        )
        assert first.status_code in (200, 400), first.text
        ps = client.get("/api/ps").json()["models"]
        again = client.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False, "options": GREEDY})
    assert again.status_code == 200 and again.json()["done"] is True
    if first.status_code == 200:
        assert ps and ps[0]["expires_at"].startswith("2318")


def runner_pids() -> list[int]:
    """Model runner processes started by this test process (the live server runs in it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"server.runner" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_killing_the_runner_mid_stream_fails_that_stream_and_the_server_recovers(
    start: Callable[..., LiveServer],
) -> None:
    server = start(OLLAMA_NUM_PARALLEL="2")
    body = {"model": MODEL, "prompt": "Tell me a long story.", "stream": True, "options": {"num_predict": 2000}}
    with server.client() as client:
        alone = client.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False, "options": GREEDY})
        (pid,) = runner_pids()
        lines = []
        with client.stream("POST", "/api/generate", json=body) as response:
            for line in response.iter_lines():
                lines.append(json.loads(line))
                if len(lines) == 3:
                    os.kill(pid, signal.SIGKILL)
        assert lines[-1].get("error", "").startswith("the model runner stopped unexpectedly (killed by SIGKILL)")
        assert "done" not in lines[-1]
        wait_for(lambda: client.get("/api/ps").json()["models"] == [])
        again = client.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False, "options": GREEDY})
        assert again.status_code == 200 and again.json()["response"] == alone.json()["response"]
        assert [m["name"] for m in client.get("/api/ps").json()["models"]] == [MODEL]
        assert runner_pids() != [pid]


def test_stopping_the_server_stops_its_runners(start: Callable[..., LiveServer]) -> None:
    server = start()
    with server.client() as client:
        assert client.post("/api/generate", json={"model": MODEL}).status_code == 200
    assert len(runner_pids()) == 1
    server.stop()
    wait_for(lambda: runner_pids() == [])
