"""Overload: a burst of four times what fits (``OLLAMA_NUM_PARALLEL`` slots + ``OLLAMA_MAX_QUEUE`` waiting) gets
503s for the excess at once, every admitted request completes, the runner's memory stays flat over repeated
bursts, and the server answers exactly as before right after."""

from __future__ import annotations

import json
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
NUM_PARALLEL, MAX_QUEUE = 2, 4
FITS = NUM_PARALLEL + MAX_QUEUE
BURST = 4 * FITS
BUSY = "server busy, please try again.  maximum pending requests exceeded"
# Admitted requests decode this many tokens: long enough that the whole burst has arrived before the first
# admitted one finishes, on any machine (submitting a request is far cheaper than 128 decode steps).
LONG = {"temperature": 0, "num_predict": 128}


def burst(url: str) -> list[tuple[int, float, dict[str, Any]]]:
    """Send BURST non-streaming generations at once; (status, seconds, body) per request."""
    barrier = threading.Barrier(BURST)
    results: list[tuple[int, float, dict[str, Any]]] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        body = {"model": MODEL, "prompt": f"Request {index}: count to one hundred.", "stream": False, "options": LONG}
        with httpx.Client(base_url=url, timeout=600) as client:
            barrier.wait()
            started = time.monotonic()
            reply = client.post("/api/generate", json=body)
            with lock:
                results.append((reply.status_code, time.monotonic() - started, reply.json()))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert len(results) == BURST
    return results


def runner_rss(server: LiveServer) -> int:
    app: Any = server.server.config.app
    (row,) = app.state.inference.scheduler.running()
    status = Path(f"/proc/{row.runner.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024


def greedy(client: httpx.Client) -> str:
    body = {
        "model": MODEL,
        "prompt": "Name three colors.",
        "stream": False,
        "options": {"temperature": 0, "num_predict": 24},
    }
    reply = client.post("/api/generate", json=body)
    assert reply.status_code == 200
    return str(reply.json()["response"])


def test_burst_beyond_the_queue_gets_503s_at_once_and_the_rest_completes(
    start_server: Callable[..., LiveServer], tmp_path: Path, smollm2_path: Path
) -> None:
    seed_store(tmp_path / "models", smollm2_path)
    server = start_server(tmp_path / "models", num_parallel=str(NUM_PARALLEL), max_queue=str(MAX_QUEUE))
    with server.client() as client:
        before = greedy(client)
    sizes = []
    for _ in range(2):
        results = burst(server.url)
        admitted = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 503]
        assert (len(admitted), len(refused)) == (FITS, BURST - FITS), sorted(r[0] for r in results)
        assert all(body == {"error": BUSY} for _, _, body in refused)
        # At once: every refusal came back before the first admitted request finished.
        assert max(seconds for _, seconds, _ in refused) < min(seconds for _, seconds, _ in admitted)
        for _, _, body in admitted:
            assert body["done"] is True and body["eval_count"] > 0 and body["response"]
        sizes.append(runner_rss(server))
    # Flat: the second burst grows the runner by less than 5% over the first (no per-request leak).
    assert max(sizes[1:]) < sizes[0] * 1.05, sizes
    with server.client() as client:
        assert greedy(client) == before
        metrics = client.get("/metrics").text
        assert json.loads(client.get("/readyz").text) == {"status": "ready"}
    assert f'corral_rejected_requests_total{{reason="queue_full"}} {2.0 * (BURST - FITS)}' in metrics
