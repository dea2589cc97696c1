"""Property: whatever one client sends, another client's greedy stream beside it is exactly its alone output,
and the API keeps answering ``GET /`` quickly (inference never runs on the API's event loop).

Hypothesis generates the attacker's requests (any endpoint, options of every kind and type, formats, contexts,
keep-alives, malformed bodies) for a bounded number of examples, derandomized so CI is repeatable. A victim
thread streams the same greedy request over and over beside it; a pinger measures ``GET /`` throughout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.options import DEFAULTS
from server.settings import Settings
from tests.server.conftest import LiveServer, free_port, seed_store

pytestmark = pytest.mark.slow

MODEL = "smollm2:135m"
VICTIM = {
    "model": MODEL,
    "prompt": "Name four seasons.",
    "stream": True,
    "options": {"temperature": 0, "num_predict": 24},
}
ENDPOINTS = [
    "/api/generate",
    "/api/chat",
    "/api/embed",
    "/api/embeddings",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/api/show",
    "/api/tokenize",
]
# Limits on GET / while inference runs beside it. Compute on the event loop would stall most pings for a whole
# decode step or prefill; a noisy CI machine stalls a rare one for a scheduling slice. So the typical ping must be
# fast and no ping may wait as long as a prefill would hold the loop.
PING_P90_LIMIT_S = 0.1
PING_WORST_LIMIT_S = 2.0

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
option_names = st.sampled_from(sorted(DEFAULTS())) | st.text(max_size=12)
options = st.dictionaries(option_names, json_values | st.integers(-5, 5000), max_size=6)
schemas = st.recursive(
    st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])}),
    lambda inner: (
        st.fixed_dictionaries(
            {
                "type": st.just("object"),
                "properties": st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=3),
            }
        )
        | st.fixed_dictionaries({"type": st.just("array"), "items": inner})
    ),
    max_leaves=6,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", "x"]), "content": st.text(max_size=200)}
    ),
    max_size=5,
)
bodies = st.fixed_dictionaries(
    {"model": st.sampled_from([MODEL, MODEL, MODEL, "", "absent:latest", "bad name!"])},
    optional={
        "prompt": st.text(max_size=300),
        "messages": messages,
        "input": st.text(max_size=100) | st.lists(st.text(max_size=50), max_size=40),
        "options": options,
        "format": st.sampled_from(["", "json", "xml"]) | schemas,
        "context": st.lists(st.integers(-(2**40), 2**40), max_size=6),
        "keep_alive": json_scalars,
        "stream": st.booleans(),
        "raw": st.booleans(),
        "think": json_scalars,
        "max_tokens": st.integers(-3, 3000),
        "stop": st.lists(st.text(max_size=10), max_size=5),
        "truncate": st.booleans(),
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(-2, 30),
        "tools": st.lists(json_values, max_size=2),
    },
)


class Victim:
    """Streams the victim request until stopped; every run must reproduce ``expected`` exactly."""

    def __init__(self, url: str, expected: str) -> None:
        self.url = url
        self.expected = expected
        self.runs = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=300) as client:
            while not self.stop.is_set():
                try:
                    text = stream_text(client)
                except Exception as exc:
                    self.failures.append(f"victim error: {exc!r}")
                    continue
                self.runs += 1
                if text != self.expected:
                    self.failures.append(f"victim got {text!r}")


class Pinger:
    """``GET /`` every 20 ms; remembers how long each answer took."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seconds: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.wait(0.02):
                started = time.perf_counter()
                assert client.get("/").status_code == 200
                self.seconds.append(time.perf_counter() - started)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def stream_text(client: httpx.Client) -> str:
    parts = []
    with client.stream("POST", "/api/generate", json=VICTIM) as response:
        for line in response.iter_lines():
            chunk = json.loads(line)
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
            parts.append(chunk["response"])
    return "".join(parts)


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Iterator[tuple[LiveServer, Victim, Pinger]]:
    models = tmp_path_factory.mktemp("models")
    seed_store(models, smollm2_path)
    environ = {"OLLAMA_HOST": f"127.0.0.1:{free_port()}", "OLLAMA_MODELS": str(models), "OLLAMA_NUM_PARALLEL": "2"}
    server = LiveServer(Settings.from_env(environ))
    server.start()
    with server.client() as client:
        expected = stream_text(client)
    victim, pinger = Victim(server.url, expected), Pinger(server.url)
    victim.thread.start()
    pinger.thread.start()
    yield server, victim, pinger
    victim.stop.set()
    pinger.stop.set()
    victim.thread.join(300)
    pinger.thread.join(60)
    server.stop()


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(ENDPOINTS), body=bodies | json_values)
def test_no_request_disturbs_another_clients_stream(
    arena: tuple[LiveServer, Victim, Pinger], endpoint: str, body: Any
) -> None:
    server, victim, _ = arena
    with httpx.Client(base_url=server.url, timeout=httpx.Timeout(30, read=8)) as client:
        try:
            reply = client.post(endpoint, content=json.dumps(body))
        except httpx.ReadTimeout:
            return  # a long request; the client gives up (the server cancels it)
    assert reply.status_code < 500 or reply.status_code == 503, (endpoint, body, reply.text)
    assert not victim.failures, victim.failures


def test_the_victim_ran_and_the_api_stayed_responsive(arena: tuple[LiveServer, Victim, Pinger]) -> None:
    _, victim, pinger = arena
    runs = victim.runs
    deadline = time.monotonic() + 300  # the attackers' last requests may still hold slots on a loaded machine
    while victim.runs == runs and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim.runs > runs and not victim.failures, victim.failures
    assert pinger.seconds, "the pinger never got an answer"
    p90, worst = pinger.percentile(0.9), max(pinger.seconds)
    summary = f"GET / over {len(pinger.seconds)} pings: p90 {p90 * 1000:.0f} ms, worst {worst * 1000:.0f} ms"
    assert p90 < PING_P90_LIMIT_S and worst < PING_WORST_LIMIT_S, summary
