"""``POST /api/chat``: framing, message shape, durations, load/unload, sampling and prompt parity with generate."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from conformance import expect
from conformance.calls import PROMPT, chat, full_name, generate, greedy, stop_from, timed_post, user

pytestmark = pytest.mark.ref("1.3")

TINY_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cf"
        "c0f01f0005000201e2278b4b0000000049454e44ae426082"
    )
).decode()


def _reply(
    http: httpx.Client, model: str, messages: list[dict[str, Any]] | None = None, **fields: Any
) -> dict[str, Any]:
    resp = chat(http, model, messages, **fields)
    expect.status(resp, 200)
    body: dict[str, Any] = expect.json_body(resp)
    return body


@pytest.fixture(scope="module")
def stream(http: httpx.Client, model: str) -> list[dict[str, Any]]:
    """One default (streaming) chat, shared by the framing cases."""
    body = {"model": model, "messages": [user(PROMPT)], "options": greedy(8)}
    return expect.ndjson(http.post("/api/chat", json=body))


@pytest.fixture(scope="module")
def single(http: httpx.Client, model: str) -> tuple[dict[str, Any], int]:
    """One ``stream:false`` chat and its wall time in ns."""
    body = {"model": model, "messages": [user(PROMPT)], "stream": False, "options": greedy(8)}
    resp, wall = timed_post(http, "/api/chat", body)
    expect.status(resp, 200)
    return expect.json_body(resp), wall


def test_stream_is_default(stream: list[dict[str, Any]]) -> None:
    expect.check(len(stream) > 1, "chat stream without 'stream' field", "several NDJSON lines", len(stream))


def test_stream_chunk_message_shape(stream: list[dict[str, Any]]) -> None:
    for chunk in stream:
        expect.fields(chunk, {"model": str, "created_at": str, "message": dict, "done": bool}, "chat chunk")
        expect.fields(chunk["message"], {"role": str, "content": str}, "chat chunk message")
        expect.equal(chunk["message"]["role"], "assistant", "chunk message role")


def test_stream_single_final_chunk(stream: list[dict[str, Any]]) -> None:
    done = [i for i, c in enumerate(stream) if c.get("done") is True]
    expect.equal(done, [len(stream) - 1], "indexes of chunks with done:true")


def test_stream_final_chunk_metrics(stream: list[dict[str, Any]]) -> None:
    expect.fields(
        stream[-1], {"done_reason": str, "total_duration": int, "load_duration": int, "eval_count": int}, "final"
    )


def test_stream_created_at_utc(stream: list[dict[str, Any]]) -> None:
    for chunk in stream:
        expect.timestamp(chunk.get("created_at"), "created_at", utc=True)


def test_non_stream_shape(single: tuple[dict[str, Any], int], model: str) -> None:
    body, _ = single
    expect.fields(body, {"model": str, "created_at": str, "message": dict, "done": bool}, "chat body")
    expect.equal(body["model"], model, "chat model")
    expect.equal(body["done"], True, "chat done")
    expect.equal(body["message"].get("role"), "assistant", "chat message role")
    expect.fields(body["message"], {"content": str}, "chat message")


def test_non_stream_content_type(http: httpx.Client, model: str) -> None:
    expect.media_type(chat(http, model, options=greedy(2)), "application/json; charset=utf-8", exact=True)


def test_no_context_field(single: tuple[dict[str, Any], int]) -> None:
    expect.check("context" not in single[0], "chat context", "absent (chat returns no context)", single[0])


def test_durations_are_nanoseconds(single: tuple[dict[str, Any], int]) -> None:
    body, wall = single
    expect.duration_ns(body.get("total_duration"), "total_duration", wall_ns=wall)
    for key in ("load_duration", "prompt_eval_duration", "eval_duration"):
        if key in body:
            expect.duration_ns(body[key], key)


def test_done_reason_value(single: tuple[dict[str, Any], int]) -> None:
    reason = single[0].get("done_reason")
    expect.check(reason in ("stop", "length"), "done_reason", "'stop' or 'length'", reason)


def test_num_predict_caps_eval_count(http: httpx.Client, model: str) -> None:
    body = _reply(http, model, options=greedy(3))
    expect.check(body.get("eval_count", 0) <= 3, "eval_count with num_predict 3", "<= 3", body.get("eval_count"))
    if body.get("eval_count") == 3:
        expect.equal(body.get("done_reason"), "length", "done_reason when num_predict is reached")


def test_temperature_zero_is_deterministic(http: httpx.Client, model: str) -> None:
    first = _reply(http, model)["message"]["content"]
    expect.equal(_reply(http, model)["message"]["content"], first, "second temperature-0 reply")


def test_same_seed_reproduces(http: httpx.Client, model: str) -> None:
    options = {"temperature": 1.0, "seed": 7, "num_predict": 8, "top_k": 100, "top_p": 1.0}
    first = _reply(http, model, options=options)["message"]["content"]
    expect.equal(_reply(http, model, options=options)["message"]["content"], first, "reply with the same seed")


def test_stream_matches_non_stream(stream: list[dict[str, Any]], single: tuple[dict[str, Any], int]) -> None:
    streamed = "".join(c["message"].get("content", "") for c in stream)
    expect.equal(streamed, single[0]["message"]["content"], "concatenated streamed content")


def test_stop_sequence_cuts(http: httpx.Client, model: str) -> None:
    base = _reply(http, model, options=greedy(16))["message"]["content"]
    if len(base.strip()) < 8:
        pytest.skip(f"the model's reply is too short to pick a stop sequence from: {base!r}")
    stop, before = stop_from(base)
    body = _reply(http, model, options=greedy(16, stop=[stop]))
    expect.check(stop not in body["message"]["content"], "content with stop", f"no {stop!r}", body["message"])
    expect.equal(body["message"]["content"], before, f"content cut at stop {stop!r}")
    expect.equal(body.get("done_reason"), "stop", "done_reason after a stop sequence")


def test_matches_generate(http: httpx.Client, model: str) -> None:
    """Generate renders its prompt through the same template as a one-turn chat (reference §1.2)."""
    replied = _reply(http, model, [user(PROMPT)])["message"]["content"]
    generated = expect.json_body(generate(http, model, PROMPT))["response"]
    expect.equal(replied, generated, "chat reply vs generate response for the same prompt")


def test_load_with_empty_messages(http: httpx.Client, model: str) -> None:
    resp = http.post("/api/chat", json={"model": model, "messages": []})
    expect.status(resp, 200)
    expect.media_type(resp, "application/json")
    body = expect.json_body(resp)
    expect.equal(
        {k: body.get(k) for k in ("model", "message", "done", "done_reason")},
        {"model": model, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "load"},
        "chat load response",
    )


def test_unload_with_keep_alive_zero(http: httpx.Client, model: str) -> None:
    body = expect.json_body(http.post("/api/chat", json={"model": model, "messages": [], "keep_alive": 0}))
    expect.equal(body.get("done_reason"), "unload", "chat unload done_reason")
    expect.equal(body.get("message"), {"role": "assistant", "content": ""}, "chat unload message")


def test_multi_turn(http: httpx.Client, model: str) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        user("Hi"),
        {"role": "assistant", "content": "Hello."},
        user("Name a colour."),
    ]
    expect.fields(_reply(http, model, messages, options=greedy(4))["message"], {"content": str}, "reply")


def test_role_is_case_insensitive(http: httpx.Client, model: str) -> None:
    resp = chat(http, model, [{"role": "USER", "content": "Hi"}], options=greedy(2))
    expect.status(resp, 200)


def test_trailing_assistant_prefill(http: httpx.Client, model: str) -> None:
    messages = [user("Say hello."), {"role": "assistant", "content": "Hello"}]
    expect.status(chat(http, model, messages, options=greedy(3)), 200)


def test_consecutive_same_role_messages(http: httpx.Client, model: str) -> None:
    expect.status(chat(http, model, [user("First part."), user("Second part.")], options=greedy(2)), 200)


def test_tool_role_message_accepted(http: httpx.Client, model: str) -> None:
    messages = [user("Weather?"), {"role": "tool", "content": "sunny", "tool_name": "get_weather"}]
    expect.status(chat(http, model, messages, options=greedy(2)), 200)


def test_unknown_fields_ignored(http: httpx.Client, model: str) -> None:
    expect.status(chat(http, model, options=greedy(2), extra_field=[1, 2]), 200)


def test_model_name_case_insensitive(http: httpx.Client, model: str) -> None:
    expect.status(chat(http, model.upper(), options=greedy(2)), 200)


@pytest.mark.lacks("tools")
def test_tools_need_tools_capability(http: httpx.Client, model: str) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    expect.native_error(chat(http, model, tools=tools), 400, f"{full_name(model)} does not support tools")


@pytest.mark.lacks("thinking")
def test_think_needs_thinking(http: httpx.Client, model: str) -> None:
    expect.native_error(chat(http, model, think=True), 400, f'"{model}" does not support thinking')


@pytest.mark.needs("thinking")
def test_thinking_in_message(http: httpx.Client, model: str) -> None:
    body = _reply(http, model, think=True, options=greedy(64))
    expect.check(bool(body["message"].get("thinking")), "message.thinking", "non-empty with think:true", body)


@pytest.mark.needs("vision")
def test_image_accepted(http: httpx.Client, model: str) -> None:
    messages = [{"role": "user", "content": "What is in the picture?", "images": [TINY_PNG]}]
    expect.status(chat(http, model, messages, options=greedy(4)), 200)


@pytest.mark.optional
def test_modelfile_system_only_without_system_message(
    http: httpx.Client, model: str, show_info: dict[str, Any]
) -> None:
    system = str(show_info.get("system") or "")
    if not system:
        pytest.skip("the model has no Modelfile SYSTEM")
    rendered = _reply(http, model, [user("hi")], _debug_render_only=True).get("_debug_info", {})
    expect.check(system in rendered.get("rendered_template", ""), "prompt", "Modelfile SYSTEM included", rendered)
    own = [{"role": "system", "content": "marker-own-system"}, user("hi")]
    rendered = _reply(http, model, own, _debug_render_only=True).get("_debug_info", {})
    expect.check(
        system not in rendered.get("rendered_template", ""),
        "prompt with a system message",
        "Modelfile SYSTEM left out",
        rendered,
    )
