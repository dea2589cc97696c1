"""Structured output: ``format: "json"`` parses and a JSON-schema ``format`` is obeyed (native and ``/v1``)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from conformance import expect
from conformance.calls import chat, generate, greedy, user

pytestmark = pytest.mark.ref("1.2")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]}, "count": {"type": "integer"}},
    "required": ["color", "count"],
}
SCHEMA_PROMPT = "Pick a color and a count."
# Short answers: a 135M model rambles inside free-form JSON, and a reply cut by num_predict cannot parse.
JSON_PROMPT = "Give the capital of France as JSON with key city."


def _parsed(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError(f"{where}: expected JSON text, observed {expect.show(text)}") from None


def _obeys(value: Any, where: str) -> None:
    try:
        jsonschema.validate(value, SCHEMA)
    except jsonschema.ValidationError as exc:
        raise AssertionError(
            f"{where}: expected a value valid for the schema, observed {value!r} ({exc.message})"
        ) from None


def test_generate_format_json_parses(http: httpx.Client, model: str) -> None:
    body = expect.json_body(generate(http, model, JSON_PROMPT, format="json", options=greedy(64)))
    _parsed(body.get("response", ""), "generate format:json response")


def test_generate_format_json_is_object(http: httpx.Client, model: str) -> None:
    body = expect.json_body(generate(http, model, JSON_PROMPT, format="json", options=greedy(64)))
    value = _parsed(body.get("response", ""), "generate format:json response")
    expect.check(isinstance(value, dict), "format:json value", "a JSON object", value)


def test_chat_format_json_parses(http: httpx.Client, model: str) -> None:
    body = expect.json_body(chat(http, model, [user(JSON_PROMPT)], format="json", options=greedy(64)))
    _parsed(body["message"]["content"], "chat format:json content")


def test_generate_schema_obeyed(http: httpx.Client, model: str) -> None:
    body = expect.json_body(generate(http, model, SCHEMA_PROMPT, format=SCHEMA, options=greedy(64)))
    _obeys(_parsed(body.get("response", ""), "generate schema response"), "generate schema response")


def test_chat_schema_obeyed(http: httpx.Client, model: str) -> None:
    body = expect.json_body(chat(http, model, [user(SCHEMA_PROMPT)], format=SCHEMA, options=greedy(64)))
    _obeys(_parsed(body["message"]["content"], "chat schema content"), "chat schema content")


def test_chat_schema_streamed(http: httpx.Client, model: str) -> None:
    body = {"model": model, "messages": [user(SCHEMA_PROMPT)], "format": SCHEMA, "options": greedy(48)}
    chunks = expect.ndjson(http.post("/api/chat", json=body))
    text = "".join(c.get("message", {}).get("content", "") for c in chunks)
    _obeys(_parsed(text, "streamed schema content"), "streamed schema content")


def test_schema_enum_respected_against_prompt(http: httpx.Client, model: str) -> None:
    prompt = "Pick the color purple and the count 3."
    body = expect.json_body(chat(http, model, [user(prompt)], format=SCHEMA, options=greedy(64)))
    value = _parsed(body["message"]["content"], "schema content")
    expect.check(value.get("color") in ("red", "green", "blue"), "color", "one of the enum values", value)


@pytest.mark.ref("3.1")
def test_openai_json_object(http: httpx.Client, model: str) -> None:
    body = {
        "model": model,
        "messages": [user(JSON_PROMPT)],
        "response_format": {"type": "json_object"},
        "temperature": 0,
        "seed": 1234,
        "max_tokens": 64,
    }
    resp = http.post("/v1/chat/completions", json=body)
    expect.status(resp, 200)
    _parsed(expect.json_body(resp)["choices"][0]["message"]["content"], "/v1 json_object content")


@pytest.mark.ref("3.1")
def test_openai_json_schema(http: httpx.Client, model: str) -> None:
    body = {
        "model": model,
        "messages": [user(SCHEMA_PROMPT)],
        "response_format": {"type": "json_schema", "json_schema": {"name": "pick", "schema": SCHEMA}},
        "temperature": 0,
        "seed": 1234,
        "max_tokens": 64,
    }
    resp = http.post("/v1/chat/completions", json=body)
    expect.status(resp, 200)
    content = expect.json_body(resp)["choices"][0]["message"]["content"]
    _obeys(_parsed(content, "/v1 json_schema content"), "/v1 json_schema content")


def test_invalid_format_rejected(http: httpx.Client, model: str) -> None:
    resp = generate(http, model, format="yaml")
    message = expect.native_error(resp, 500, prefix="invalid format: ")
    expect.check(
        message.endswith('expected "json" or a valid JSON Schema object'),
        "invalid format message",
        'text ending with: expected "json" or a valid JSON Schema object',
        message,
    )


def test_invalid_format_before_stream(http: httpx.Client, model: str) -> None:
    """An error raised before the first chunk gets its real status and a JSON body, not NDJSON (reference §0)."""
    resp = http.post("/api/generate", json={"model": model, "prompt": "hi", "format": "yaml"})
    expect.native_error(resp, 500, prefix="invalid format: ")
