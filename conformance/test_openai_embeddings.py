"""``POST /v1/embeddings``: list object, indexes, ``dimensions``, ``encoding_format``, agreement with ``/api/embed``."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import pytest

from conformance import expect

pytestmark = pytest.mark.ref("3.3")

TEXTS = ["The sky is blue.", "Cats sleep a lot."]


def _embed(http: httpx.Client, model: str, value: Any, **fields: Any) -> dict[str, Any]:
    resp = http.post("/v1/embeddings", json={"model": model, "input": value, **fields})
    expect.status(resp, 200)
    result: dict[str, Any] = expect.json_body(resp)
    return result


@pytest.fixture(scope="module")
def pair(http: httpx.Client, embed_model: str) -> dict[str, Any]:
    return _embed(http, embed_model, TEXTS)


def test_list_object(pair: dict[str, Any], embed_model: str) -> None:
    expect.fields(pair, {"object": str, "data": list, "model": str, "usage": dict}, "/v1/embeddings body")
    expect.equal(pair["object"], "list", "object")
    expect.equal(pair["model"], embed_model, "model")


def test_items(pair: dict[str, Any], embedding_length: int | None) -> None:
    expect.equal([d.get("index") for d in pair["data"]], [0, 1], "data indexes")
    for item in pair["data"]:
        expect.equal(item.get("object"), "embedding", "data item object")
        expect.fields(item, {"embedding": list}, "data item")
        if embedding_length is not None:
            expect.equal(len(item["embedding"]), embedding_length, "vector length")


def test_usage(pair: dict[str, Any]) -> None:
    expect.fields(pair["usage"], {"prompt_tokens": int, "total_tokens": int}, "usage")
    expect.equal(pair["usage"]["total_tokens"], pair["usage"]["prompt_tokens"], "total_tokens vs prompt_tokens")


def test_single_string(http: httpx.Client, embed_model: str) -> None:
    expect.equal(len(_embed(http, embed_model, TEXTS[0])["data"]), 1, "items for one string")


def test_dimensions(http: httpx.Client, embed_model: str) -> None:
    vector = _embed(http, embed_model, TEXTS[0], dimensions=32)["data"][0]["embedding"]
    expect.equal(len(vector), 32, "vector length with dimensions 32")


def test_agrees_with_native(http: httpx.Client, embed_model: str, pair: dict[str, Any]) -> None:
    native = expect.json_body(http.post("/api/embed", json={"model": embed_model, "input": TEXTS}))["embeddings"]
    for i in range(2):
        similarity = expect.cosine(pair["data"][i]["embedding"], native[i])
        expect.check(similarity > 0.9999, f"/v1 vs /api/embed vector {i}", "the same vector", similarity)


@pytest.mark.parametrize("fmt", ["base64", "BASE64"])
def test_base64_encoding(http: httpx.Client, embed_model: str, pair: dict[str, Any], fmt: str) -> None:
    encoded = _embed(http, embed_model, TEXTS[0], encoding_format=fmt)["data"][0]["embedding"]
    expect.check(isinstance(encoded, str), "base64 embedding", "a base64 string", encoded)
    raw = base64.b64decode(encoded)
    values = struct.unpack(f"<{len(raw) // 4}f", raw)
    similarity = expect.cosine(values, pair["data"][0]["embedding"])
    expect.check(similarity > 0.9999, "decoded little-endian float32 vector", "the float vector", similarity)


def test_float_encoding_case_insensitive(http: httpx.Client, embed_model: str) -> None:
    expect.fields(_embed(http, embed_model, "x", encoding_format="FLOAT")["data"][0], {"embedding": list}, "item")


def test_invalid_encoding_format(http: httpx.Client, embed_model: str) -> None:
    resp = http.post("/v1/embeddings", json={"model": embed_model, "input": "x", "encoding_format": "hex"})
    expect.openai_error(
        resp,
        400,
        "invalid_request_error",
        "Invalid value for 'encoding_format' = hex. Supported values: ['float', 'base64'].",
    )


@pytest.mark.parametrize("value", [None, []], ids=["null", "empty-list"])
def test_invalid_input(http: httpx.Client, embed_model: str, value: object) -> None:
    resp = http.post("/v1/embeddings", json={"model": embed_model, "input": value})
    expect.openai_error(resp, 400, "invalid_request_error", "invalid input")


@pytest.mark.optional(
    "with a model that adds no BOS token (smollm2) '' is zero tokens; Ollama answers 500 "
    "'Failed to create new sequence: no input provided', a model that adds BOS passes"
)
def test_empty_string_input(http: httpx.Client, embed_model: str) -> None:
    expect.equal(len(_embed(http, embed_model, "")["data"]), 1, "items for input ''")


def test_unknown_model(http: httpx.Client) -> None:
    resp = http.post("/v1/embeddings", json={"model": "conformance-absent", "input": "x"})
    expect.openai_error(resp, 404, "not_found_error")
