"""``POST /v1/chat/completions``: the response object, SSE framing and chunk protocol, options, agreement with
``/api/chat`` and the request errors of the compatibility layer."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from conformance import expect
from conformance.calls import PROMPT, SEED, chat, stop_from, user

pytestmark = pytest.mark.ref("3.1")
CHUNK_WHY = "v0.32.6 reworked the chunk protocol after OpenAI's wire format"


def _body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [user(PROMPT)], "temperature": 0, "seed": SEED, "max_tokens": 8, **fields}


def _complete(http: httpx.Client, model: str, **fields: Any) -> dict[str, Any]:
    resp = http.post("/v1/chat/completions", json=_body(model, **fields))
    expect.status(resp, 200)
    result: dict[str, Any] = expect.json_body(resp)
    return result


@pytest.fixture(scope="module")
def completion(http: httpx.Client, model: str) -> dict[str, Any]:
    return _complete(http, model)


@pytest.fixture(scope="module")
def chunks(http: httpx.Client, model: str) -> list[dict[str, Any]]:
    return expect.sse(http.post("/v1/chat/completions", json=_body(model, stream=True)))


def _content(result: dict[str, Any]) -> str:
    return str(result["choices"][0]["message"].get("content") or "")


def test_object_fields(completion: dict[str, Any], model: str) -> None:
    spec = {"id": str, "object": str, "created": int, "model": str, "choices": list, "usage": dict}
    expect.fields(completion, spec, "chat.completion")
    expect.equal(completion["object"], "chat.completion", "object")
    expect.equal(completion["model"], model, "model")


def test_id_prefix(completion: dict[str, Any]) -> None:
    expect.check(completion["id"].startswith("chatcmpl-"), "id", "'chatcmpl-' prefix", completion["id"])


def test_created_is_unix_seconds(completion: dict[str, Any]) -> None:
    expect.check(
        abs(completion["created"] - time.time()) < 600, "created", "unix seconds near now", completion["created"]
    )


@pytest.mark.optional
def test_system_fingerprint(completion: dict[str, Any]) -> None:
    expect.equal(completion.get("system_fingerprint"), "fp_ollama", "system_fingerprint")


def test_choice_shape(completion: dict[str, Any]) -> None:
    choice = completion["choices"][0]
    expect.equal(choice.get("index"), 0, "choices[0].index")
    expect.equal(choice["message"].get("role"), "assistant", "message.role")
    expect.fields(choice["message"], {"content": str}, "message")
    expect.check(choice.get("finish_reason") in ("stop", "length"), "finish_reason", "'stop' or 'length'", choice)


def test_usage(completion: dict[str, Any]) -> None:
    usage = completion["usage"]
    expect.fields(usage, {"prompt_tokens": int, "completion_tokens": int, "total_tokens": int}, "usage")
    expect.equal(usage["total_tokens"], usage["prompt_tokens"] + usage["completion_tokens"], "total_tokens")


def test_content_type(http: httpx.Client, model: str) -> None:
    expect.media_type(http.post("/v1/chat/completions", json=_body(model, max_tokens=2)), "application/json")


@pytest.mark.optional("Ollama's /v1 layer sets 'application/json' itself, without the charset of /api")
def test_content_type_exact(http: httpx.Client, model: str) -> None:
    resp = http.post("/v1/chat/completions", json=_body(model, max_tokens=2))
    expect.media_type(resp, "application/json", exact=True)


def test_max_tokens_caps(http: httpx.Client, model: str) -> None:
    result = _complete(http, model, max_tokens=3, messages=[user("Count from one to fifty in words.")])
    expect.check(result["usage"]["completion_tokens"] <= 3, "completion_tokens", "<= max_tokens 3", result["usage"])
    expect.equal(result["choices"][0].get("finish_reason"), "length", "finish_reason at max_tokens")


def test_temperature_zero_is_deterministic(http: httpx.Client, model: str, completion: dict[str, Any]) -> None:
    expect.equal(_content(_complete(http, model)), _content(completion), "second temperature-0 content")


def test_same_seed_reproduces(http: httpx.Client, model: str) -> None:
    first = _content(_complete(http, model, temperature=1.0, seed=99))
    expect.equal(_content(_complete(http, model, temperature=1.0, seed=99)), first, "content with the same seed")


def test_agrees_with_native_chat(http: httpx.Client, model: str, completion: dict[str, Any]) -> None:
    native = expect.json_body(
        chat(http, model, [user(PROMPT)], options={"temperature": 0, "seed": SEED, "num_predict": 8})
    )
    expect.equal(_content(completion), native["message"]["content"], "/v1 content vs /api/chat content")


@pytest.mark.parametrize("as_list", [False, True], ids=["string", "list"])
def test_stop(http: httpx.Client, model: str, as_list: bool) -> None:
    base = _content(_complete(http, model, max_tokens=16))
    if len(base.strip()) < 8:
        pytest.skip(f"the model's reply is too short to pick a stop sequence from: {base!r}")
    stop, before = stop_from(base)
    result = _complete(http, model, max_tokens=16, stop=[stop] if as_list else stop)
    expect.equal(_content(result), before, f"content cut at stop {stop!r}")
    expect.equal(result["choices"][0].get("finish_reason"), "stop", "finish_reason after a stop sequence")


def test_content_parts(http: httpx.Client, model: str) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Say hi."}]}]
    expect.status(http.post("/v1/chat/completions", json=_body(model, messages=messages, max_tokens=2)), 200)


def test_ignored_fields(http: httpx.Client, model: str) -> None:
    resp = http.post(
        "/v1/chat/completions", json=_body(model, max_tokens=2, n=1, tool_choice="auto", user="u", logit_bias={})
    )
    expect.status(resp, 200)


def test_system_message(http: httpx.Client, model: str) -> None:
    messages = [{"role": "system", "content": "Be terse."}, user("Hi")]
    expect.status(http.post("/v1/chat/completions", json=_body(model, messages=messages, max_tokens=2)), 200)


# --- streaming -------------------------------------------------------------------------------------------


def test_stream_sse_framing(http: httpx.Client, model: str) -> None:
    resp = http.post("/v1/chat/completions", json=_body(model, stream=True, max_tokens=4))
    expect.check(bool(expect.sse(resp)), "SSE chunks", "at least one chunk before [DONE]", resp.text[:200])


def test_stream_chunk_object(chunks: list[dict[str, Any]]) -> None:
    for chunk in chunks:
        expect.equal(chunk.get("object"), "chat.completion.chunk", "chunk object")


def test_stream_same_id(chunks: list[dict[str, Any]]) -> None:
    expect.equal(len({c.get("id") for c in chunks}), 1, "distinct ids across chunks")


@pytest.mark.versions(since="0.32.6", why=f"{CHUNK_WHY}: one created value per stream (before: the clock per chunk)")
def test_stream_same_created(chunks: list[dict[str, Any]]) -> None:
    expect.equal(len({c.get("created") for c in chunks}), 1, "distinct created values across chunks")


def test_stream_first_delta_has_role(chunks: list[dict[str, Any]]) -> None:
    expect.equal(chunks[0]["choices"][0]["delta"].get("role"), "assistant", "first delta role")


@pytest.mark.optional
@pytest.mark.versions(since="0.32.6", why=f"{CHUNK_WHY}: role only in the first delta")
def test_stream_role_only_first(chunks: list[dict[str, Any]]) -> None:
    roles = [c["choices"][0]["delta"].get("role") for c in chunks[1:] if c.get("choices")]
    expect.equal([r for r in roles if r], [], "roles in later deltas")


@pytest.mark.optional
@pytest.mark.versions(until="0.32.6", why="before v0.32.6 every delta carries role 'assistant'")
def test_stream_role_in_every_delta(chunks: list[dict[str, Any]]) -> None:
    roles = [c["choices"][0]["delta"].get("role") for c in chunks if c.get("choices")]
    expect.equal(set(roles), {"assistant"}, "roles of all deltas")


def test_stream_finish_chunk(chunks: list[dict[str, Any]]) -> None:
    with_choices = [c for c in chunks if c.get("choices")]
    last = with_choices[-1]["choices"][0]
    expect.check(last.get("finish_reason") in ("stop", "length"), "last finish_reason", "'stop' or 'length'", last)
    reasons = [c["choices"][0].get("finish_reason") for c in with_choices[:-1]]
    expect.equal([r for r in reasons if r], [], "finish_reason before the last chunk")


@pytest.mark.optional
@pytest.mark.versions(since="0.32.6", why=f"{CHUNK_WHY}: the finish chunk has an empty delta")
def test_stream_finish_chunk_empty_delta(chunks: list[dict[str, Any]]) -> None:
    last = [c for c in chunks if c.get("choices")][-1]["choices"][0]
    expect.equal(last.get("delta"), {}, "delta of the finish chunk")


@pytest.mark.optional
@pytest.mark.versions(until="0.32.6", why="before v0.32.6 the finish chunk carries the role and empty content")
def test_stream_finish_chunk_role_delta(chunks: list[dict[str, Any]]) -> None:
    last = [c for c in chunks if c.get("choices")][-1]["choices"][0]
    expect.equal(last.get("delta"), {"role": "assistant", "content": ""}, "delta of the finish chunk")


def test_stream_matches_non_stream(chunks: list[dict[str, Any]], completion: dict[str, Any]) -> None:
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    expect.equal(text, _content(completion), "concatenated streamed content")


def test_stream_no_usage_by_default(chunks: list[dict[str, Any]]) -> None:
    expect.equal([c for c in chunks if c.get("usage")], [], "chunks with usage without include_usage")


def test_stream_include_usage(http: httpx.Client, model: str) -> None:
    body = _body(model, stream=True, stream_options={"include_usage": True})
    events = expect.sse(http.post("/v1/chat/completions", json=body))
    last = events[-1]
    expect.equal(last.get("choices"), [], "choices of the usage chunk")
    expect.fields(
        last.get("usage") or {}, {"prompt_tokens": int, "completion_tokens": int, "total_tokens": int}, "usage"
    )


# --- request errors --------------------------------------------------------------------------------------


def test_image_url_rejected(http: httpx.Client, model: str) -> None:
    content = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    resp = http.post("/v1/chat/completions", json=_body(model, messages=[{"role": "user", "content": content}]))
    expect.openai_error(
        resp,
        400,
        "invalid_request_error",
        "image URLs are not currently supported, please use base64 encoded data instead",
    )


def test_invalid_image_input(http: httpx.Client, model: str) -> None:
    content = [{"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGOD"}}]
    resp = http.post("/v1/chat/completions", json=_body(model, messages=[{"role": "user", "content": content}]))
    expect.openai_error(resp, 400, "invalid_request_error", "invalid image input")


def test_invalid_tool_call_arguments(http: httpx.Client, model: str) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
    messages = [user("hi"), {"role": "assistant", "content": "", "tool_calls": [call]}]
    resp = http.post("/v1/chat/completions", json=_body(model, messages=messages))
    expect.openai_error(resp, 400, "invalid_request_error", "invalid tool call arguments")


def test_invalid_reasoning_effort(http: httpx.Client, model: str) -> None:
    expect.openai_error(
        http.post("/v1/chat/completions", json=_body(model, reasoning_effort="extreme")), 400, "invalid_request_error"
    )


@pytest.mark.lacks("thinking")
def test_reasoning_effort_none_is_fine(http: httpx.Client, model: str) -> None:
    expect.status(http.post("/v1/chat/completions", json=_body(model, reasoning_effort="none", max_tokens=2)), 200)
