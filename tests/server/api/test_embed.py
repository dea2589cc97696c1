"""POST /api/embed and the legacy /api/embeddings with the real smollm2 model (mean pooling)."""

from __future__ import annotations

import math

import httpx
import pytest


def embed(api: httpx.Client, **body) -> httpx.Response:
    return api.post("/api/embed", json={"model": "smollm2:135m", **body})


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_embeddings_are_unit_vectors_of_the_model_dimension(api: httpx.Client) -> None:
    body = embed(api, input=["The cat sat.", "A dog ran."]).json()
    assert body["model"] == "smollm2:135m"
    assert [len(v) for v in body["embeddings"]] == [576, 576]
    assert all(abs(norm(v) - 1) < 1e-4 for v in body["embeddings"])
    assert body["embeddings"][0] != body["embeddings"][1]
    assert body["prompt_eval_count"] > 4
    assert body["total_duration"] >= body["load_duration"] > 0


def test_string_input_equals_list_input(api: httpx.Client) -> None:
    single = embed(api, input="Hello there").json()["embeddings"]
    listed = embed(api, input=["Hello there"]).json()["embeddings"]
    assert len(single) == 1
    assert max(abs(a - b) for a, b in zip(single[0], listed[0], strict=True)) < 1e-5


def test_dimensions_truncates_and_renormalizes(api: httpx.Client) -> None:
    full = embed(api, input="Hello there").json()["embeddings"][0]
    cut = embed(api, input="Hello there", dimensions=64).json()["embeddings"][0]
    assert len(cut) == 64 and abs(norm(cut) - 1) < 1e-4
    scale = norm(full[:64])
    assert max(abs(c - f / scale) for c, f in zip(cut, full[:64], strict=True)) < 1e-4


def test_empty_input_loads_and_returns_no_vectors(api: httpx.Client) -> None:
    assert embed(api, input=[]).json() == {"model": "smollm2:135m", "embeddings": []}


def test_truncate_false_rejects_input_longer_than_the_context(api: httpx.Client) -> None:
    long = "word " * 3000
    response = embed(api, input=long, truncate=False, options={"num_ctx": 256})
    assert (response.status_code, response.json()) == (400, {"error": "the input length exceeds the context length"})
    truncated = embed(api, input=long, options={"num_ctx": 256})
    assert truncated.status_code == 200 and len(truncated.json()["embeddings"][0]) == 576


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "", "input": "x"}, 404, "model '' not found"),
        ({"model": "nope", "input": "x"}, 404, 'model "nope" not found, try pulling it first'),
        ({"model": "smollm2:135m", "input": 5}, 400, "invalid input type"),
        ({"model": "smollm2:135m", "input": ["a", 1]}, 400, "invalid input type"),
    ],
)
def test_error_rows(api: httpx.Client, body: dict, status: int, error: str) -> None:
    response = api.post("/api/embed", json=body)
    assert (response.status_code, response.json()) == (status, {"error": error})


def test_legacy_embeddings(api: httpx.Client) -> None:
    vector = api.post("/api/embeddings", json={"model": "smollm2:135m", "prompt": "Hello there"}).json()["embedding"]
    assert len(vector) == 576
    assert api.post("/api/embeddings", json={"model": "smollm2:135m"}).json() == {"embedding": []}
    missing = api.post("/api/embeddings", json={"prompt": "x"})
    assert (missing.status_code, missing.json()) == (400, {"error": "model is required"})
