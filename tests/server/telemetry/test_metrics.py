"""``/metrics`` against a real server with smollm2: counts that match what the API returned, gauges that show a
request in flight, the runner's step histogram, Prometheus naming, and the switch that turns it all off."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import LiveServer, seed_store

pytestmark = pytest.mark.slow

MODEL = "smollm2:135m"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: httpx.Client) -> Samples:
    reply = client.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def served(start_server: Callable[..., LiveServer], tmp_path: Path, smollm2_path: Path) -> Iterator[LiveServer]:
    seed_store(tmp_path / "models", smollm2_path)
    yield start_server(tmp_path / "models", num_parallel="2")


def generate(client: httpx.Client, prompt: str, num_predict: int) -> tuple[int, dict[str, int]]:
    """Stream a greedy generation; returns the number of content chunks and the final object."""
    body = {"model": MODEL, "prompt": prompt, "options": {"temperature": 0, "num_predict": num_predict}}
    chunks, final = 0, {}
    with client.stream("POST", "/api/generate", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            item = json.loads(line)
            if item["done"]:
                final = item
            elif item["response"]:
                chunks += 1
    return chunks, final


def test_request_metrics_match_the_responses(served: LiveServer) -> None:
    with served.client() as client:
        before = scrape(client)
        chunks, first = generate(client, "Write a sentence about the sea.", 16)
        _, second = generate(client, "Write a sentence about the sea.", 16)  # same prompt: its prefix is cached
        after = scrape(client)
    label = {"model": MODEL}
    assert value(after, "corral_output_tokens_total", **label) == first["eval_count"] + second["eval_count"]
    prompt = value(after, "corral_prompt_tokens_total", **label)
    cached = value(after, "corral_prompt_tokens_cached_total", **label)
    assert prompt - cached == first["prompt_eval_count"] + second["prompt_eval_count"]
    assert cached > 0 and second["prompt_eval_count"] < first["prompt_eval_count"]
    assert value(after, "corral_time_to_first_token_seconds_count", **label) == 2
    # Every gap between two generated tokens of a request is one observation.
    assert value(after, "corral_inter_token_latency_seconds_count", **label) >= 2 * (chunks - 1)
    assert value(after, "corral_time_per_output_token_seconds_count", **label) == 2
    route = {"route": "/api/generate", "dialect": "native", "status": "200"}
    assert value(after, "corral_requests_total", **route) - value(before, "corral_requests_total", **route) == 2
    assert value(after, "corral_model_load_duration_seconds_count", **label) == 1
    ttft_sum = value(after, "corral_time_to_first_token_seconds_sum", **label)
    duration = value(after, "corral_request_duration_seconds_sum", route="/api/generate", dialect="native")
    assert 0 < ttft_sum < duration


def test_openai_requests_count_as_their_dialect(served: LiveServer) -> None:
    with served.client() as client:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0}
        usage = client.post("/v1/chat/completions", json=body).json()["usage"]
        missing = client.post("/v1/chat/completions", json={**body, "model": "absent:latest"})
        samples = scrape(client)
    assert missing.status_code == 404
    ok = {"route": "/v1/chat/completions", "dialect": "openai"}
    assert value(samples, "corral_requests_total", **ok, status="200") == 1
    assert value(samples, "corral_requests_total", **ok, status="404") == 1
    assert value(samples, "corral_output_tokens_total", model=MODEL) == usage["completion_tokens"]


def test_gauges_show_a_request_in_flight(served: LiveServer) -> None:
    started = threading.Event()
    stop = threading.Event()

    def stream() -> None:
        body = {"model": MODEL, "prompt": "Count slowly.", "options": {"temperature": 0, "num_predict": 4000}}
        with (
            httpx.Client(base_url=served.url, timeout=300) as client,
            client.stream("POST", "/api/generate", json=body) as response,
        ):
            for _ in response.iter_lines():
                started.set()
                if stop.is_set():
                    return

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    try:
        assert started.wait(120)
        with served.client() as client:
            samples = scrape(client)
    finally:
        stop.set()
        thread.join(60)
    label = {"model": MODEL}
    assert value(samples, "corral_models_loaded") == 1
    assert value(samples, "corral_slots_total", **label) == 2
    assert value(samples, "corral_slots_busy", **label) == 1
    assert value(samples, "corral_queue_depth", **label) == 0
    assert value(samples, "corral_model_memory_bytes", **label) > 100_000_000
    steps = value(samples, "corral_compute_step_seconds_count", **label)
    assert steps > 0
    assert value(samples, "corral_compute_step_seconds_bucket", model=MODEL, le="+Inf") == steps


def test_every_metric_has_help_and_prometheus_names(served: LiveServer) -> None:
    with served.client() as client:
        generate(client, "Hi", 2)
        text = client.get("/metrics").text
    families = [f for f in text_string_to_metric_families(text) if f.name.startswith("corral_")]
    assert len(families) >= 15
    for family in families:
        assert family.documentation, family.name
        if family.type == "counter" and family.samples:
            assert any(s.name.endswith("_total") for s in family.samples), family.name
        if family.type == "histogram" and "tokens" not in family.name:
            assert family.name.endswith("_seconds"), family.name


def test_metrics_can_be_turned_off(start_server: Callable[..., LiveServer]) -> None:
    server = start_server(variables={"CORRAL_METRICS": "0"})
    with server.client() as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/").text == "Ollama is running"
