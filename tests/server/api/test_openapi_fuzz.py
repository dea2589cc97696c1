"""schemathesis drives a real server with smollm2 from its own ``/openapi.json`` (a few hundred cases, a fixed
seed, generation capped at a few tokens): no 5xx but the documented ones (503 busy or draining, the 500 Ollama
answers for an unusable ``format``), no response that breaks the document (stream lines included), and the
server idle afterwards. The long run is ``perf/bench_schemathesis.py``."""

from __future__ import annotations

import copy

import pytest

from perf.bench_schemathesis import MODEL, StreamCheck, documented_server_error, fuzz, settle, tame
from tests.server.conftest import LiveServer

pytestmark = pytest.mark.slow

INFERENCE_ROUTES = ("POST /api/generate", "POST /api/chat", "POST /v1/chat/completions", "POST /v1/completions")


def test_a_few_hundred_generated_requests_find_no_error(model_server: LiveServer) -> None:
    report = fuzz(model_server.url, requests_wanted=300, seed_value=0, max_tokens=4)
    assert report.failures == [], "\n".join(report.failures[:20])
    assert report.requests >= 300
    # The run reached the model, not only the parsers. Which routes get a valid case depends on the generated
    # data (the document's every detail feeds the generator), so ask it of the routes together; the test below
    # sends one valid request to each and checks the answers against the document.
    assert sum(report.classes[(route, "2xx")] for route in INFERENCE_ROUTES) >= 4, report.summary()
    readings = settle(model_server.url, timeout=120)
    assert readings == {f'corral_slots_busy{{model="{MODEL}"}}': 0.0, f'corral_queue_depth{{model="{MODEL}"}}': 0.0}


VALID = {
    "/api/generate": {"model": MODEL, "prompt": "Hi", "options": {"num_predict": 3}},
    "/api/chat": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "options": {"num_predict": 3}},
    "/v1/chat/completions": {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
    "/v1/completions": {"model": MODEL, "prompt": "Hi", "max_tokens": 3, "stream": True},
}


@pytest.mark.parametrize("path", list(VALID))
def test_every_inference_route_answers_a_valid_request_as_documented(model_server: LiveServer, path: str) -> None:
    assert f"POST {path}" in INFERENCE_ROUTES
    with model_server.client() as client:
        document = client.get("/openapi.json").json()
        reply = client.post(path, json=VALID[path])
    assert reply.status_code == 200, reply.text
    assert StreamCheck(document).failures("POST", path, 200, reply.headers["content-type"], reply.text) == []


def test_a_response_that_breaks_the_document_is_a_failure(model_server: LiveServer) -> None:
    with model_server.client() as client:
        document = client.get("/openapi.json").json()
    wrong = copy.deepcopy(document)
    wrong["components"]["schemas"]["VersionResponse"]["properties"]["version"] = {"type": "integer"}
    report = fuzz(model_server.url, requests_wanted=3, document=wrong, only=frozenset({"GET /api/version"}))
    assert report.failures
    assert "version" in report.failures[0]


@pytest.mark.parametrize(
    ("path", "body", "component"),
    [
        ("/api/generate", {"model": MODEL, "prompt": "Hi", "options": {"num_predict": 3}}, "GenerateResponse"),
        ("/v1/completions", {"model": MODEL, "prompt": "Hi", "max_tokens": 3, "stream": True}, "OpenAICompletionChunk"),
    ],
)
def test_a_stream_item_that_breaks_the_document_is_a_failure(
    model_server: LiveServer, path: str, body: dict[str, object], component: str
) -> None:
    with model_server.client() as client:
        document = client.get("/openapi.json").json()
        reply = client.post(path, json=body)
    assert (
        StreamCheck(document).failures("POST", path, reply.status_code, reply.headers["content-type"], reply.text) == []
    )
    wrong = copy.deepcopy(document)
    wrong["components"]["schemas"][component]["required"].append("no_such_field")
    failures = StreamCheck(wrong).failures("POST", path, reply.status_code, reply.headers["content-type"], reply.text)
    assert failures, "every chunk lacks the field the broken document requires"


def test_tame_caps_generation_and_keeps_load_time_options_away() -> None:
    body = tame("POST", "/api/generate", {"model": "x", "options": {"num_ctx": 10**9, "num_predict": -1}}, max_tokens=4)
    assert body["options"] == {"num_predict": 4}
    chat = tame("POST", "/v1/chat/completions", {"max_tokens": 10**6}, max_tokens=4)
    assert chat["max_tokens"] == 4 and chat["max_completion_tokens"] == 4
    assert tame("DELETE", "/api/delete", {"model": MODEL}, max_tokens=4) == {"model": "fuzzed"}
    assert tame("POST", "/api/chat", [1, 2], max_tokens=4) == [1, 2]


def test_only_documented_server_errors_pass() -> None:
    assert documented_server_error(
        503, b'{"error": "server busy, please try again.  maximum pending requests exceeded"}'
    )
    assert documented_server_error(500, b'{"error": "invalid format: \\"x\\"; expected \\"json\\" or ..."}')
    assert documented_server_error(500, b'{"error": {"message": "invalid format: \\"x\\"", "type": "api_error"}}')
    assert not documented_server_error(500, b"Internal Server Error")
    assert not documented_server_error(500, b'{"error": "model runner crashed"}')
    assert not documented_server_error(502, b'{"error": "invalid format: "}')
