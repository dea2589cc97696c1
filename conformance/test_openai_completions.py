"""``POST /v1/completions``: the text_completion object, SSE framing, options and agreement with ``/api/generate``."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from conformance import expect
from conformance.calls import PROMPT, SEED, generate, stop_from

pytestmark = pytest.mark.ref("3.2")


def _body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "prompt": PROMPT, "temperature": 0, "seed": SEED, "max_tokens": 8, **fields}


def _complete(http: httpx.Client, model: str, **fields: Any) -> dict[str, Any]:
    resp = http.post("/v1/completions", json=_body(model, **fields))
    expect.status(resp, 200)
    result: dict[str, Any] = expect.json_body(resp)
    return result


@pytest.fixture(scope="module")
def completion(http: httpx.Client, model: str) -> dict[str, Any]:
    return _complete(http, model)


@pytest.fixture(scope="module")
def chunks(http: httpx.Client, model: str) -> list[dict[str, Any]]:
    return expect.sse(http.post("/v1/completions", json=_body(model, stream=True)))


def _text(result: dict[str, Any]) -> str:
    return str(result["choices"][0].get("text") or "")


def test_object_fields(completion: dict[str, Any], model: str) -> None:
    spec = {"id": str, "object": str, "created": int, "model": str, "choices": list, "usage": dict}
    expect.fields(completion, spec, "text_completion")
    expect.equal(completion["object"], "text_completion", "object")
    expect.equal(completion["model"], model, "model")
    expect.check(completion["id"].startswith("cmpl-"), "id", "'cmpl-' prefix", completion["id"])
    expect.check(abs(completion["created"] - time.time()) < 600, "created", "unix seconds near now", completion)


def test_choice_shape(completion: dict[str, Any]) -> None:
    choice = completion["choices"][0]
    expect.fields(choice, {"text": str, "index": int}, "choice")
    expect.equal(choice["index"], 0, "choice index")
    expect.check(choice.get("finish_reason") in ("stop", "length"), "finish_reason", "'stop' or 'length'", choice)


def test_usage(completion: dict[str, Any]) -> None:
    usage = completion["usage"]
    expect.fields(usage, {"prompt_tokens": int, "completion_tokens": int, "total_tokens": int}, "usage")
    expect.equal(usage["total_tokens"], usage["prompt_tokens"] + usage["completion_tokens"], "total_tokens")


def test_max_tokens_length(http: httpx.Client, model: str) -> None:
    result = _complete(http, model, prompt="Count from one to fifty in words.", max_tokens=3)
    expect.check(result["usage"]["completion_tokens"] <= 3, "completion_tokens", "<= 3", result["usage"])
    expect.equal(result["choices"][0].get("finish_reason"), "length", "finish_reason at max_tokens")


def test_deterministic(http: httpx.Client, model: str, completion: dict[str, Any]) -> None:
    expect.equal(_text(_complete(http, model)), _text(completion), "second temperature-0 text")


def test_same_seed_reproduces(http: httpx.Client, model: str) -> None:
    first = _text(_complete(http, model, temperature=1.0, seed=5))
    expect.equal(_text(_complete(http, model, temperature=1.0, seed=5)), first, "text with the same seed")


def test_agrees_with_native_generate(http: httpx.Client, model: str, completion: dict[str, Any]) -> None:
    native = expect.json_body(generate(http, model, PROMPT, options={"temperature": 0, "seed": SEED, "num_predict": 8}))
    expect.equal(_text(completion), native["response"], "/v1/completions text vs /api/generate response")


def test_stop(http: httpx.Client, model: str) -> None:
    base = _text(_complete(http, model, max_tokens=16))
    if len(base.strip()) < 8:
        pytest.skip(f"the model's reply is too short to pick a stop sequence from: {base!r}")
    stop, before = stop_from(base)
    result = _complete(http, model, max_tokens=16, stop=[stop])
    expect.equal(_text(result), before, f"text cut at stop {stop!r}")
    expect.equal(result["choices"][0].get("finish_reason"), "stop", "finish_reason after a stop sequence")


def test_stop_non_string_rejected(http: httpx.Client, model: str) -> None:
    resp = http.post("/v1/completions", json=_body(model, stop=["a", 5]))
    error = expect.openai_error(resp, 400, "invalid_request_error")
    expect.check(
        error["message"].startswith("invalid type for 'stop' field"),
        "error message",
        "text starting with \"invalid type for 'stop' field\"",
        error["message"],
    )


def test_stream_sse_framing(http: httpx.Client, model: str) -> None:
    resp = http.post("/v1/completions", json=_body(model, stream=True, max_tokens=4))
    expect.check(bool(expect.sse(resp)), "SSE chunks", "at least one chunk before [DONE]", resp.text[:200])


def test_stream_chunks(chunks: list[dict[str, Any]]) -> None:
    for chunk in chunks:
        expect.equal(chunk.get("object"), "text_completion", "chunk object")
    expect.equal(len({c.get("id") for c in chunks}), 1, "distinct ids across chunks")


def test_stream_finish_reason_last(chunks: list[dict[str, Any]]) -> None:
    with_choices = [c for c in chunks if c.get("choices")]
    expect.check(
        with_choices[-1]["choices"][0].get("finish_reason") in ("stop", "length"),
        "last finish_reason",
        "'stop' or 'length'",
        with_choices[-1],
    )
    earlier = [c["choices"][0].get("finish_reason") for c in with_choices[:-1]]
    expect.equal([r for r in earlier if r], [], "finish_reason before the last chunk")


def test_stream_matches_non_stream(chunks: list[dict[str, Any]], completion: dict[str, Any]) -> None:
    text = "".join(c["choices"][0].get("text") or "" for c in chunks if c.get("choices"))
    expect.equal(text, _text(completion), "concatenated streamed text")


def test_stream_include_usage(http: httpx.Client, model: str) -> None:
    events = expect.sse(
        http.post("/v1/completions", json=_body(model, stream=True, stream_options={"include_usage": True}))
    )
    last = events[-1]
    expect.equal(last.get("choices"), [], "choices of the usage chunk")
    expect.fields(
        last.get("usage") or {}, {"prompt_tokens": int, "completion_tokens": int, "total_tokens": int}, "usage"
    )


@pytest.mark.lacks("insert")
def test_suffix_needs_insert(http: httpx.Client, model: str) -> None:
    expect.openai_error(http.post("/v1/completions", json=_body(model, suffix="end")), 400, "invalid_request_error")


def test_unknown_model(http: httpx.Client) -> None:
    resp = http.post("/v1/completions", json={"model": "conformance-absent", "prompt": "x"})
    expect.openai_error(resp, 404, "not_found_error")
