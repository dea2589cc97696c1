"""``/healthz`` and ``/readyz`` against real servers: a stopped runner and an over-long compute step make the
server unhealthy (and it recovers), readiness waits for the catalog's preloads and reports a failed one."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.catalog import apply_catalog, load_catalog
from server.store.store import Store
from tests.server.conftest import LiveServer, seed_store
from tests.server.test_catalog import SMOL_ENTRY, write_catalog

pytestmark = pytest.mark.slow

MODEL = "smollm2:135m"


def runner_pid(server: LiveServer) -> int:
    app: Any = server.server.config.app
    (row,) = app.state.inference.scheduler.running()
    pid: int = row.runner.pid
    return pid


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def loaded(start_server: Callable[..., LiveServer], tmp_path: Path, smollm2_path: Path) -> LiveServer:
    seed_store(tmp_path / "models", smollm2_path)
    server = start_server(tmp_path / "models", variables={"CORRAL_STEP_TIMEOUT": "1ms"})
    with server.client() as client:
        assert client.post("/api/generate", json={"model": MODEL}).json()["done_reason"] == "load"
    return server


def test_a_stopped_runner_makes_the_server_unhealthy_until_it_continues(loaded: LiveServer) -> None:
    with loaded.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        pid = runner_pid(loaded)
        os.kill(pid, signal.SIGSTOP)
        try:
            reply = client.get("/healthz")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert reply.status_code == 503
        assert reply.json() == {"status": "unhealthy", "problems": [f"{MODEL}: the model runner does not answer"]}
        wait_until(lambda: client.get("/healthz").status_code == 200)
        assert client.get("/readyz").status_code == 200  # readiness is about traffic, not liveness


def test_a_compute_step_longer_than_the_step_timeout_fails_liveness(loaded: LiveServer) -> None:
    """Prefill steps of a long prompt take far longer than the 1 ms limit set here, on any machine (a stand-in
    for a hung kernel); probes during them fail, and pass again once the step ends."""
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def probe() -> None:
        with loaded.client() as client:
            while not done.is_set():
                reply = client.get("/healthz")
                if reply.status_code == 503:
                    seen.append(reply.json())

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        with loaded.client() as client:
            for attempt in range(5):
                if seen:
                    break
                prompt = f"{attempt} " + "the quick brown fox jumps over the lazy dog " * 150
                body = {"model": MODEL, "prompt": prompt, "stream": False, "options": {"num_predict": 1}}
                assert client.post("/api/generate", json=body).status_code == 200
    finally:
        done.set()
        thread.join(60)
    assert seen, "no probe saw the long step"
    (problem,) = seen[0]["problems"]
    assert problem.startswith(f"{MODEL}: one compute step has run for") and "CORRAL_STEP_TIMEOUT is 0.001s" in problem
    with loaded.client() as client:
        wait_until(lambda: client.get("/healthz").status_code == 200)


def test_readiness_waits_for_preloads_and_reports_a_failed_one(
    start_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    absent = SMOL_ENTRY.replace("smol:135m", "absent:1b").replace("    weights:", "    preload: true\n    weights:")
    path = write_catalog(tmp_path, "version: 1\nmodels:" + SMOL_ENTRY + "    preload: true\n" + absent)
    catalog = load_catalog(path)
    models = tmp_path / "models"
    only_smol = tmp_path / "only-smol"
    only_smol.mkdir()
    apply_catalog(load_catalog(write_catalog(only_smol, "version: 1\nmodels:" + SMOL_ENTRY)), Store(models), print)
    assert len(catalog.entries) == 2
    server = start_server(models, catalog=path)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        wait_until(lambda: "loading" not in client.get("/readyz").json())
        reply = client.get("/readyz")
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "not ready"
    assert list(body["failed"]) == ["absent:1b"] and "not found" in body["failed"]["absent:1b"]


def test_ready_once_the_preload_loaded(start_server: Callable[..., LiveServer], tmp_path: Path) -> None:
    path = write_catalog(tmp_path, "version: 1\nmodels:" + SMOL_ENTRY + "    preload: true\n")
    models = tmp_path / "models"
    apply_catalog(load_catalog(path), Store(models), lambda _: None)
    server = start_server(models, catalog=path)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        first = client.get("/readyz")
        if first.status_code == 503:
            assert first.json() == {"status": "not ready", "loading": ["smol:135m"]}
        wait_until(lambda: client.get("/readyz").status_code == 200)
        assert client.get("/readyz").json() == {"status": "ready"}
        assert client.get("/api/ps").json()["models"][0]["name"] == "smol:135m"
