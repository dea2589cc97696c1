"""``POST /api/generate``: framing, fields, durations, done_reason, load/unload and sampling behaviour."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from conformance import expect
from conformance.calls import PROMPT, full_name, generate, greedy, stop_from, timed_post

pytestmark = pytest.mark.ref("1.2")

FINAL_KEYS = (
    "model",
    "created_at",
    "response",
    "thinking",
    "done",
    "done_reason",
    "context",
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


def _streamed(http: httpx.Client, model: str, **fields: Any) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"model": model, "prompt": PROMPT, "options": greedy(8), **fields}
    return expect.ndjson(http.post("/api/generate", json=body))


def _text(http: httpx.Client, model: str, **fields: Any) -> dict[str, Any]:
    resp = generate(http, model, **fields)
    expect.status(resp, 200)
    body: dict[str, Any] = expect.json_body(resp)
    return body


@pytest.fixture(scope="module")
def stream(http: httpx.Client, model: str) -> list[dict[str, Any]]:
    """One default (streaming) generate, shared by the framing cases."""
    return _streamed(http, model)


@pytest.fixture(scope="module")
def single(http: httpx.Client, model: str) -> tuple[dict[str, Any], int]:
    """One ``stream:false`` generate and its wall time in ns."""
    resp, wall = timed_post(
        http, "/api/generate", {"model": model, "prompt": PROMPT, "stream": False, "options": greedy(8)}
    )
    expect.status(resp, 200)
    return expect.json_body(resp), wall


def test_stream_is_default(stream: list[dict[str, Any]]) -> None:
    expect.check(len(stream) > 1, "stream without 'stream' field", "several NDJSON lines", len(stream))


def test_stream_intermediate_chunks(stream: list[dict[str, Any]]) -> None:
    for chunk in stream[:-1]:
        expect.fields(chunk, {"model": str, "created_at": str, "response": str, "done": bool}, "intermediate chunk")
        expect.equal(chunk["done"], False, "intermediate chunk done")


def test_stream_single_final_chunk(stream: list[dict[str, Any]]) -> None:
    done = [i for i, c in enumerate(stream) if c.get("done") is True]
    expect.equal(done, [len(stream) - 1], "indexes of chunks with done:true")


def test_stream_final_chunk_fields(stream: list[dict[str, Any]]) -> None:
    final = stream[-1]
    spec = {"model": str, "created_at": str, "response": str, "done": bool, "done_reason": str}
    expect.fields(final, spec | {"total_duration": int, "load_duration": int, "eval_count": int}, "final chunk")
    expect.fields(final, {"eval_duration": int}, "final chunk")


def test_stream_model_echoed(stream: list[dict[str, Any]], model: str) -> None:
    expect.equal({c.get("model") for c in stream}, {model}, "model in every chunk")


def test_stream_created_at_utc(stream: list[dict[str, Any]]) -> None:
    for chunk in stream:
        expect.timestamp(chunk.get("created_at"), "created_at", utc=True)


@pytest.mark.optional
def test_created_at_fraction_trimmed(stream: list[dict[str, Any]]) -> None:
    for chunk in stream:
        expect.trimmed_fraction(str(chunk.get("created_at")), "created_at")


def test_non_stream_single_object(http: httpx.Client, model: str) -> None:
    resp = generate(http, model, options=greedy(4))
    expect.status(resp, 200)
    expect.media_type(resp, "application/json; charset=utf-8", exact=True)
    body = expect.json_body(resp)
    expect.fields(body, {"model": str, "created_at": str, "response": str, "done": bool}, "stream:false body")
    expect.equal(body["done"], True, "stream:false done")


def test_durations_are_nanoseconds(single: tuple[dict[str, Any], int]) -> None:
    body, wall = single
    expect.duration_ns(body.get("total_duration"), "total_duration", wall_ns=wall)
    for key in ("load_duration", "prompt_eval_duration", "eval_duration"):
        if key in body:
            expect.duration_ns(body[key], key)


def test_durations_ordered(single: tuple[dict[str, Any], int]) -> None:
    body, _ = single
    total = body.get("total_duration", 0)
    for key in ("load_duration", "eval_duration"):
        part = body.get(key, 0)
        expect.check(part <= total, f"{key} vs total_duration", f"<= total_duration {total}", part)


def test_counts_are_integers(single: tuple[dict[str, Any], int]) -> None:
    body, _ = single
    expect.fields(body, {"eval_count": int}, "stream:false body")
    expect.check(body["eval_count"] >= 1, "eval_count", ">= 1", body["eval_count"])
    if "prompt_eval_count" in body:
        expect.fields(body, {"prompt_eval_count": int}, "stream:false body")


def test_done_reason_value(single: tuple[dict[str, Any], int]) -> None:
    reason = single[0].get("done_reason")
    expect.check(reason in ("stop", "length"), "done_reason", "'stop' or 'length'", reason)


def test_context_returned(single: tuple[dict[str, Any], int]) -> None:
    context = single[0].get("context")
    expect.check(
        isinstance(context, list) and bool(context) and all(expect.is_type(t, int) for t in context),
        "context",
        "a non-empty list of token ids",
        context,
    )


def test_context_continues(http: httpx.Client, model: str, single: tuple[dict[str, Any], int]) -> None:
    resp = generate(http, model, prompt="Go on.", context=single[0].get("context", []), options=greedy(4))
    expect.status(resp, 200)


def test_raw_returns_no_context(http: httpx.Client, model: str) -> None:
    body = _text(http, model, prompt="The sky is", raw=True, options=greedy(4))
    expect.check("context" not in body, "raw mode context", "absent", body.get("context"))


def test_num_predict_caps_eval_count(http: httpx.Client, model: str) -> None:
    body = _text(http, model, options=greedy(3))
    expect.check(body.get("eval_count", 0) <= 3, "eval_count with num_predict 3", "<= 3", body.get("eval_count"))


def test_done_reason_length(http: httpx.Client, model: str) -> None:
    body = _text(http, model, prompt="Count from one to fifty in words.", options=greedy(3))
    expect.equal(body.get("done_reason"), "length", "done_reason when num_predict is reached")


def test_temperature_zero_is_deterministic(http: httpx.Client, model: str) -> None:
    first = _text(http, model, options=greedy(8))["response"]
    second = _text(http, model, options=greedy(8))["response"]
    expect.equal(second, first, "second temperature-0 response")


def test_same_seed_reproduces(http: httpx.Client, model: str) -> None:
    options = {"temperature": 1.0, "seed": 42, "num_predict": 8, "top_k": 100, "top_p": 1.0}
    first = _text(http, model, options=options)["response"]
    second = _text(http, model, options=options)["response"]
    expect.equal(second, first, "second response with the same seed")


def test_stream_matches_non_stream(http: httpx.Client, model: str, stream: list[dict[str, Any]]) -> None:
    streamed = "".join(c.get("response", "") for c in stream)
    whole = _text(http, model, options=greedy(8))["response"]
    expect.equal(streamed, whole, "concatenated streamed response")


def test_stop_sequence_cuts(http: httpx.Client, model: str) -> None:
    base = _text(http, model, options=greedy(16))["response"]
    if len(base.strip()) < 8:
        pytest.skip(f"the model's reply is too short to pick a stop sequence from: {base!r}")
    stop, before = stop_from(base)
    body = _text(http, model, options=greedy(16, stop=[stop]))
    expect.check(stop not in body["response"], "response with stop", f"no {stop!r}", body["response"])
    expect.equal(body["response"], before, f"response cut at stop {stop!r}")
    expect.equal(body.get("done_reason"), "stop", "done_reason after a stop sequence")


def test_stop_sequence_cuts_stream(http: httpx.Client, model: str) -> None:
    base = _text(http, model, options=greedy(16))["response"]
    if len(base.strip()) < 8:
        pytest.skip(f"the model's reply is too short to pick a stop sequence from: {base!r}")
    stop, before = stop_from(base)
    chunks = _streamed(http, model, options=greedy(16, stop=["@@@never@@@", stop]))
    text = "".join(c.get("response", "") for c in chunks)
    expect.equal(text, before, f"streamed response cut at stop {stop!r}")


def test_load_with_empty_prompt(http: httpx.Client, model: str) -> None:
    resp = http.post("/api/generate", json={"model": model})
    expect.status(resp, 200)
    expect.media_type(resp, "application/json")
    body = expect.json_body(resp)
    expect.check(isinstance(body, dict), "load response", "one JSON object (even when streaming)", body)
    expect.equal(
        {k: body.get(k) for k in ("model", "response", "done", "done_reason")},
        {"model": model, "response": "", "done": True, "done_reason": "load"},
        "load response",
    )
    expect.timestamp(body.get("created_at"), "created_at", utc=True)


@pytest.mark.optional
def test_load_response_has_no_metrics(http: httpx.Client, model: str) -> None:
    body = expect.json_body(http.post("/api/generate", json={"model": model, "prompt": ""}))
    extra = set(body) - {"model", "created_at", "response", "done", "done_reason"}
    expect.equal(sorted(extra), [], "extra keys in the load response")


def test_load_duration_when_already_loaded(http: httpx.Client, model: str) -> None:
    expect.status(generate(http, model, options=greedy(1), keep_alive="5m"), 200)
    body = expect.json_body(generate(http, model, options=greedy(1)))
    expect.check(
        expect.is_type(body.get("load_duration"), int),
        "load_duration of a request to a loaded model",
        "an integer (present, if small)",
        body.get("load_duration", "absent"),
    )


@pytest.mark.parametrize("keep_alive", [0, "0s", "0"])
def test_unload(http: httpx.Client, model: str, keep_alive: object) -> None:
    resp = http.post("/api/generate", json={"model": model, "keep_alive": keep_alive})
    expect.status(resp, 200)
    body = expect.json_body(resp)
    expect.equal(
        {k: body.get(k) for k in ("model", "response", "done", "done_reason")},
        {"model": model, "response": "", "done": True, "done_reason": "unload"},
        "unload response",
    )


@pytest.mark.parametrize("keep_alive", ["5m", 300, "1h30m", -1])
def test_keep_alive_forms_accepted(http: httpx.Client, model: str, keep_alive: object) -> None:
    expect.status(generate(http, model, keep_alive=keep_alive, options=greedy(2)), 200)


def test_system_override_accepted(http: httpx.Client, model: str) -> None:
    expect.status(generate(http, model, system="You answer in French.", options=greedy(4)), 200)


def test_unknown_fields_ignored(http: httpx.Client, model: str) -> None:
    expect.status(generate(http, model, not_a_field=True, options=greedy(2)), 200)


def test_unknown_options_ignored(http: httpx.Client, model: str) -> None:
    expect.status(generate(http, model, options=greedy(2, tfs_z=1.0, mirostat=0, numa=False)), 200)


def test_model_name_case_insensitive(http: httpx.Client, model: str) -> None:
    expect.status(generate(http, model.upper(), options=greedy(2)), 200)


@pytest.mark.parametrize("fmt", [None, ""])
def test_empty_format_ignored(http: httpx.Client, model: str, fmt: object) -> None:
    expect.status(generate(http, model, format=fmt, options=greedy(2)), 200)


def test_non_ascii_prompt(http: httpx.Client, model: str) -> None:
    body = _text(http, model, prompt="Ça va? 日本語で答えて 🙂", options=greedy(4))
    expect.fields(body, {"response": str}, "response")


def test_think_false_accepted(http: httpx.Client, model: str) -> None:
    expect.status(generate(http, model, think=False, options=greedy(2)), 200)


@pytest.mark.lacks("insert")
def test_suffix_needs_insert(http: httpx.Client, model: str) -> None:
    resp = generate(http, model, suffix="return x")
    expect.native_error(resp, 400, f"{full_name(model)} does not support insert")


@pytest.mark.lacks("thinking")
def test_think_needs_thinking(http: httpx.Client, model: str) -> None:
    expect.native_error(generate(http, model, think=True), 400, f'"{model}" does not support thinking')


@pytest.mark.needs("thinking")
def test_thinking_goes_to_thinking_field(http: httpx.Client, model: str) -> None:
    body = _text(http, model, think=True, options=greedy(64))
    expect.check(bool(body.get("thinking")), "thinking with think:true", "a non-empty 'thinking' field", body)


@pytest.mark.optional
def test_logprobs(http: httpx.Client, model: str) -> None:
    body = _text(http, model, logprobs=True, top_logprobs=2, options=greedy(3))
    items = body.get("logprobs")
    expect.check(isinstance(items, list) and bool(items), "logprobs", "a non-empty list", items)
    for item in items or []:
        expect.fields(item, {"token": str, "logprob": float, "top_logprobs": list}, "logprobs item")


@pytest.mark.optional
def test_ndjson_lines_are_go_compact(http: httpx.Client, model: str) -> None:
    resp = http.post("/api/generate", json={"model": model, "prompt": "Say <b> & </b>", "options": greedy(6)})
    for line in resp.text.splitlines():
        expect.equal(line, expect.go_json(json.loads(line)), "NDJSON line (Go encoding/json form)")


@pytest.mark.optional
def test_final_chunk_key_order(stream: list[dict[str, Any]]) -> None:
    expect.key_order(stream[-1], FINAL_KEYS, "final chunk")


@pytest.mark.optional
def test_debug_render_only(http: httpx.Client, model: str) -> None:
    body = _text(http, model, prompt="marker-prompt-42", _debug_render_only=True)
    info = body.get("_debug_info")
    expect.check(isinstance(info, dict), "_debug_info", "an object", body)
    rendered = (info or {}).get("rendered_template", "")
    expect.check("marker-prompt-42" in rendered, "rendered_template", "text containing the prompt", rendered)


@pytest.mark.optional
def test_debug_render_system_override(http: httpx.Client, model: str) -> None:
    body = _text(http, model, prompt="hi", system="marker-system-7", _debug_render_only=True)
    rendered = (body.get("_debug_info") or {}).get("rendered_template", "")
    expect.check("marker-system-7" in rendered, "rendered_template", "text containing the system override", rendered)


@pytest.mark.optional
def test_debug_render_template_override(http: httpx.Client, model: str) -> None:
    body = _text(http, model, prompt="hi", template="PROMPT: {{ .Prompt }}", _debug_render_only=True)
    rendered = (body.get("_debug_info") or {}).get("rendered_template")
    expect.equal(rendered, "PROMPT: hi", "rendered_template with a template override")
