"""``POST /api/embed`` and the legacy ``POST /api/embeddings``: shapes, dimension, normalisation, truncation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conformance import expect

pytestmark = pytest.mark.ref("1.4")

TEXTS = ["The sky is blue.", "Cats sleep a lot."]
LONG_TEXT = " ".join(["conformance"] * 400)


def _embed(http: httpx.Client, model: str, value: Any, **fields: Any) -> dict[str, Any]:
    resp = http.post("/api/embed", json={"model": model, "input": value, **fields})
    expect.status(resp, 200)
    body: dict[str, Any] = expect.json_body(resp)
    return body


@pytest.fixture(scope="module")
def pair(http: httpx.Client, embed_model: str) -> dict[str, Any]:
    return _embed(http, embed_model, TEXTS)


def test_single_string(http: httpx.Client, embed_model: str) -> None:
    body = _embed(http, embed_model, TEXTS[0])
    expect.fields(body, {"model": str, "embeddings": list}, "/api/embed body")
    expect.equal(len(body["embeddings"]), 1, "number of vectors for one string")


def test_content_type(http: httpx.Client, embed_model: str) -> None:
    resp = http.post("/api/embed", json={"model": embed_model, "input": "x"})
    expect.media_type(resp, "application/json; charset=utf-8", exact=True)


def test_batch_count(pair: dict[str, Any]) -> None:
    expect.equal(len(pair["embeddings"]), 2, "number of vectors for two strings")


def test_vectors_are_numbers(pair: dict[str, Any]) -> None:
    for vector in pair["embeddings"]:
        expect.check(all(expect.is_type(x, float) for x in vector), "vector items", "numbers", vector[:4])


def test_dimension_matches_model(pair: dict[str, Any], embedding_length: int | None) -> None:
    if embedding_length is None:
        pytest.skip("/api/show model_info reports no <arch>.embedding_length")
    expect.equal([len(v) for v in pair["embeddings"]], [embedding_length] * 2, "vector lengths")


def test_unit_length(pair: dict[str, Any]) -> None:
    for i, vector in enumerate(pair["embeddings"]):
        expect.unit_norm(vector, f"vector {i}")


def test_metrics(pair: dict[str, Any], embed_model: str) -> None:
    expect.equal(pair["model"], embed_model, "model")
    expect.fields(pair, {"total_duration": int, "load_duration": int, "prompt_eval_count": int}, "/api/embed body")
    expect.check(pair["prompt_eval_count"] >= 2, "prompt_eval_count", ">= 1 token per input", pair["prompt_eval_count"])


def test_deterministic(http: httpx.Client, embed_model: str, pair: dict[str, Any]) -> None:
    again = _embed(http, embed_model, TEXTS)["embeddings"][0]
    similarity = expect.cosine(again, pair["embeddings"][0])
    expect.check(similarity > 0.99999, "cosine of two embeddings of the same text", "> 0.99999", similarity)


def test_batch_equals_single(http: httpx.Client, embed_model: str, pair: dict[str, Any]) -> None:
    alone = _embed(http, embed_model, TEXTS[1])["embeddings"][0]
    similarity = expect.cosine(alone, pair["embeddings"][1])
    expect.check(similarity > 0.999, "cosine of batched vs single embedding", "> 0.999", similarity)


def test_different_texts_differ(pair: dict[str, Any]) -> None:
    similarity = expect.cosine(pair["embeddings"][0], pair["embeddings"][1])
    expect.check(similarity < 0.9999, "cosine of two different texts", "< 0.9999", similarity)


@pytest.mark.parametrize("dimensions", [16, 64])
def test_dimensions_truncate(http: httpx.Client, embed_model: str, pair: dict[str, Any], dimensions: int) -> None:
    vector = _embed(http, embed_model, TEXTS[0], dimensions=dimensions)["embeddings"][0]
    expect.equal(len(vector), dimensions, "vector length with 'dimensions'")
    expect.unit_norm(vector, "truncated vector (re-normalised)")
    prefix = pair["embeddings"][0][:dimensions]
    similarity = expect.cosine(vector, prefix)
    expect.check(similarity > 0.9999, "truncated vector vs prefix of the full one", "same direction", similarity)


@pytest.mark.parametrize("value", ["", []], ids=["empty-string", "empty-list"])
def test_empty_input_loads(http: httpx.Client, embed_model: str, value: object) -> None:
    body = _embed(http, embed_model, value)
    expect.equal(body.get("embeddings"), [], "embeddings for empty input")


def test_input_wrong_type(http: httpx.Client, embed_model: str) -> None:
    resp = http.post("/api/embed", json={"model": embed_model, "input": 42})
    expect.native_error(resp, 400, "invalid input type")


def test_truncate_false_too_long(http: httpx.Client, embed_model: str) -> None:
    resp = http.post(
        "/api/embed", json={"model": embed_model, "input": LONG_TEXT, "truncate": False, "options": {"num_ctx": 64}}
    )
    expect.native_error(resp, 400, "the input length exceeds the context length")


def test_truncate_default_fits(http: httpx.Client, embed_model: str) -> None:
    body = _embed(http, embed_model, LONG_TEXT, options={"num_ctx": 64})
    expect.equal(len(body["embeddings"]), 1, "vectors for a long input with truncation on")
    expect.unit_norm(body["embeddings"][0], "truncated-input vector")


@pytest.mark.ref("1.5")
def test_legacy_embeddings(http: httpx.Client, embed_model: str, embedding_length: int | None) -> None:
    resp = http.post("/api/embeddings", json={"model": embed_model, "prompt": TEXTS[0]})
    expect.status(resp, 200)
    body = expect.json_body(resp)
    expect.fields(body, {"embedding": list}, "/api/embeddings body")
    if embedding_length is not None:
        expect.equal(len(body["embedding"]), embedding_length, "legacy vector length")


@pytest.mark.ref("1.5")
def test_legacy_same_direction_as_embed(http: httpx.Client, embed_model: str, pair: dict[str, Any]) -> None:
    legacy = expect.json_body(http.post("/api/embeddings", json={"model": embed_model, "prompt": TEXTS[0]}))
    similarity = expect.cosine(legacy["embedding"], pair["embeddings"][0])
    expect.check(similarity > 0.999, "cosine of /api/embeddings vs /api/embed", "> 0.999", similarity)


@pytest.mark.ref("1.5")
def test_legacy_empty_prompt_loads(http: httpx.Client, embed_model: str) -> None:
    resp = http.post("/api/embeddings", json={"model": embed_model, "prompt": ""})
    expect.status(resp, 200)
    expect.equal(expect.json_body(resp), {"embedding": []}, "legacy body for an empty prompt")
