"""The OpenAI-compatible API (/v1) against a real server with smollm2:135m, through the official `openai`
client and raw httpx for the SSE frames and error bodies.

One server and one model serve the whole module (generation on a shared 2-core machine is slow). Every
generation is deterministic: temperature 0 and a seed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from server.api.openai import sse_response
from server.errors import ServerBusy
from server.openai_compat import ChatCompletionStream
from server.service.events import Event, Output
from server.settings import Settings
from server.store.modelfile import parse_modelfile

from ..conftest import LiveServer, free_port
from .conftest import REPO, upload

MODEL = "smollm2:135m"
SAMPLING: dict[str, Any] = {"temperature": 0, "seed": 7}
USER = [{"role": "user", "content": "Name three colors."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city name"}},
            "required": ["city"],
        },
    },
}


def weather_call(i: int, city: str) -> dict[str, Any]:
    arguments = json.dumps({"city": city})
    function = {"name": "get_weather", "arguments": arguments}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": f"call_{i}", "type": "function", "function": function}],
    }


# Two earlier calls in the history make even this tiny model answer with a tool call (checked at temperature 0);
# the history also exercises assistant tool calls with JSON-string arguments.
TOOL_PROMPT = [
    {"role": "system", "content": "You are a weather assistant. To answer, always call the get_weather tool."},
    {"role": "user", "content": "Weather in London?"},
    weather_call(1, "London"),
    {"role": "user", "content": "Weather in Rome?"},
    weather_call(2, "Rome"),
    {"role": "user", "content": "Weather in Paris?"},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Iterator[LiveServer]:
    environ = {"OLLAMA_HOST": f"127.0.0.1:{free_port()}", "OLLAMA_MODELS": str(tmp_path_factory.mktemp("models"))}
    live = LiveServer(Settings.from_env(environ))
    live.start()
    modelfile = parse_modelfile((REPO / "modelfiles" / "smollm2-135m.Modelfile").read_bytes())
    with live.client() as http:
        body = {
            "model": MODEL,
            "files": {"model.gguf": upload(http, smollm2_path)},
            "template": modelfile.template,
            "system": modelfile.system,
            "parameters": modelfile.parameters,
            "stream": False,
        }
        response = http.post("/api/create", json=body)
        assert response.status_code == 200, response.text
    yield live
    live.stop()


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def client(server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=300) as sdk:
        yield sdk


def sse_events(response: httpx.Response) -> list[Any]:
    """The decoded ``data:`` payloads of a raw SSE body, checking the framing on the way."""
    assert response.headers["content-type"] == "text/event-stream"
    text = response.text
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: "), block
        payload = block.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


# -- chat ----------------------------------------------------------------------------------------------------


def test_chat_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=USER, max_tokens=24, **SAMPLING)
    assert re.fullmatch(r"chatcmpl-\d{1,3}", completion.id)
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.system_fingerprint == "fp_ollama"
    (choice,) = completion.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.message.tool_calls is None
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= 24
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
        **SAMPLING,
    )
    chunks = list(stream)
    *content, finish, usage = chunks
    assert len({(c.id, c.created) for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert content[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in content[1:])
    assert all(c.choices[0].finish_reason is None for c in content)
    text = "".join(c.choices[0].delta.content or "" for c in content)
    assert text
    assert finish.choices[0].finish_reason == "length"
    assert finish.choices[0].delta.content is None
    assert usage.choices == []
    assert usage.usage is not None
    assert usage.usage.completion_tokens == 12


def test_chat_stream_raw_frames(http: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "messages": USER,
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
        **SAMPLING,
    }
    events = sse_events(http.post("/v1/chat/completions", json=body))
    assert events[-1] == "[DONE]"
    *chunks, finish, usage, _done = events
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    for chunk in chunks:
        (choice,) = chunk["choices"]
        assert choice["finish_reason"] is None
        assert set(choice["delta"]) <= {"role", "content"}
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "length"}]
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 5
    assert usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + 5
    assert {(e["id"], e["created"], e["model"], e["system_fingerprint"]) for e in events[:-1]} == {
        (chunks[0]["id"], chunks[0]["created"], MODEL, "fp_ollama")
    }


def test_chat_without_stream_options_sends_no_usage_chunk(http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": USER, "max_tokens": 3, "stream": True, **SAMPLING}
    events = sse_events(http.post("/v1/chat/completions", json=body))
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in e for e in events[:-1])


def test_same_text_as_native_chat(http: httpx.Client, client: openai.OpenAI) -> None:
    native = http.post(
        "/api/chat",
        json={
            "model": MODEL,
            "messages": USER,
            "stream": False,
            "options": {"temperature": 0, "seed": 7, "num_predict": 20},
        },
    ).json()
    completion = client.chat.completions.create(model=MODEL, messages=USER, max_tokens=20, **SAMPLING)
    assert completion.choices[0].message.content == native["message"]["content"]
    assert completion.choices[0].finish_reason == native["done_reason"]
    assert completion.usage is not None
    assert completion.usage.completion_tokens == native["eval_count"]


def test_json_schema_output_validates(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "enum": ["Paris", "London", "Rome"]},
            "population_millions": {"type": "integer"},
        },
        "required": ["city", "population_millions"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France and its population in millions?"}],
        max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
        **SAMPLING,
    )
    assert completion.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)


def test_json_object_output_is_json(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": 'Reply with the JSON object {"color": "red"}.'}],
        max_tokens=16,
        response_format={"type": "json_object"},
        **SAMPLING,
    )
    content = completion.choices[0].message.content or ""
    assert content.lstrip().startswith("{")
    if completion.choices[0].finish_reason == "stop":  # cut at max_tokens, the object may be unfinished
        assert isinstance(json.loads(content), dict)


def test_tool_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=TOOL_PROMPT,
        tools=[WEATHER_TOOL],
        max_tokens=60,
        **SAMPLING,
    )
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == ""
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert re.fullmatch(r"call_[a-z0-9]{8}", call.id)
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_tool_call_stream(http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": TOOL_PROMPT, "tools": [WEATHER_TOOL], "stream": True, "max_tokens": 60}
    events = sse_events(http.post("/v1/chat/completions", json={**body, **SAMPLING}))
    calls = [call for e in events[:-1] for c in e["choices"] for call in c["delta"].get("tool_calls", [])]
    (call,) = calls
    assert call["index"] == 0
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert events[-2]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]
    assert events[-1] == "[DONE]"


def test_tool_choice_none_answers_in_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=TOOL_PROMPT,
        tools=[WEATHER_TOOL],
        tool_choice="none",
        max_tokens=10,
        **SAMPLING,
    )
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason in ("stop", "length")


def test_chat_logprobs(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        max_tokens=4,
        logprobs=True,
        top_logprobs=2,
        **SAMPLING,
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(t.token for t in logprobs.content) == completion.choices[0].message.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in logprobs.content)


# -- completions ---------------------------------------------------------------------------------------------


def test_completion(client: openai.OpenAI) -> None:
    completion = client.completions.create(model=MODEL, prompt="The sky is", max_tokens=8, **SAMPLING)
    assert re.fullmatch(r"cmpl-\d{1,3}", completion.id)
    assert completion.object == "text_completion"
    assert completion.system_fingerprint == "fp_ollama"
    (choice,) = completion.choices
    assert choice.text
    assert choice.finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 8


def test_completion_stream_with_usage(client: openai.OpenAI, http: httpx.Client) -> None:
    chunks = list(
        client.completions.create(
            model=MODEL,
            prompt="The sky is",
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
            **SAMPLING,
        )
    )
    *texts, usage = chunks
    assert texts[-1].choices[0].finish_reason == "length"
    assert all(c.choices[0].finish_reason is None for c in texts[:-1])
    assert usage.choices == []
    assert usage.usage is not None and usage.usage.completion_tokens == 6
    text = "".join(c.choices[0].text for c in texts)
    whole = client.completions.create(model=MODEL, prompt="The sky is", max_tokens=6, **SAMPLING)
    assert text == whole.choices[0].text
    raw = sse_events(
        http.post(
            "/v1/completions",
            json={"model": MODEL, "prompt": "The sky is", "max_tokens": 2, "stream": True, **SAMPLING},
        )
    )
    assert raw[-1] == "[DONE]"
    assert all(e["object"] == "text_completion" for e in raw[:-1])


# -- embeddings ----------------------------------------------------------------------------------------------


def test_embeddings_float_and_base64_match_native(client: openai.OpenAI, http: httpx.Client) -> None:
    inputs = ["The sky is blue.", "Grass is green."]
    native = http.post("/api/embed", json={"model": MODEL, "input": inputs}).json()
    floats = client.embeddings.create(model=MODEL, input=inputs, encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert [d.embedding for d in floats.data] == native["embeddings"]
    assert floats.model == MODEL
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == native["prompt_eval_count"]
    raw = http.post("/v1/embeddings", json={"model": MODEL, "input": inputs, "encoding_format": "base64"}).json()
    for item, vector in zip(raw["data"], native["embeddings"], strict=True):
        decoded = base64.b64decode(item["embedding"])
        assert decoded == struct.pack(f"<{len(vector)}f", *vector)
    # The SDK asks for base64 by default and decodes it itself.
    default = client.embeddings.create(model=MODEL, input=inputs)
    for item, vector in zip(default.data, native["embeddings"], strict=True):
        assert item.embedding == pytest.approx(vector, rel=1e-6, abs=1e-7)


def test_embeddings_single_string_and_dimensions(client: openai.OpenAI, http: httpx.Client) -> None:
    native = http.post("/api/embed", json={"model": MODEL, "input": "hello", "dimensions": 8}).json()
    result = client.embeddings.create(model=MODEL, input="hello", dimensions=8, encoding_format="float")
    (item,) = result.data
    assert item.embedding == native["embeddings"][0]
    assert len(item.embedding) == 8


# -- models --------------------------------------------------------------------------------------------------


def test_models(client: openai.OpenAI, http: httpx.Client) -> None:
    (model,) = client.models.list().data
    assert (model.id, model.object, model.owned_by) == (MODEL, "model", "library")
    tags = http.get("/api/tags").json()["models"]
    assert model.created > 1_600_000_000
    assert tags[0]["model"] == MODEL
    retrieved = client.models.retrieve(MODEL)
    assert (retrieved.id, retrieved.created, retrieved.owned_by) == (MODEL, model.created, "library")
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("nope")
    assert info.value.body == {
        "message": "model 'nope:latest' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }


def test_models_list_is_null_without_models(start_server: Any) -> None:
    empty = start_server()
    with empty.client() as http:
        response = http.get("/v1/models")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"object": "list", "data": None}
    with openai.OpenAI(base_url=empty.url + "/v1", api_key="x", max_retries=0) as sdk:
        assert list(sdk.models.list()) == []


# -- errors --------------------------------------------------------------------------------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(16)).decode()


@pytest.mark.parametrize(
    ("path", "body", "status", "kind", "message"),
    [
        ("/v1/chat/completions", b"", 400, "invalid_request_error", "EOF"),
        (
            "/v1/chat/completions",
            b"xyz",
            400,
            "invalid_request_error",
            "invalid character 'x' looking for beginning of value",
        ),
        ("/v1/chat/completions", b'{"model":', 400, "invalid_request_error", "unexpected EOF"),
        (
            "/v1/chat/completions",
            {"model": 1},
            400,
            "invalid_request_error",
            "json: cannot unmarshal number into Go struct field ChatCompletionRequest.model of type string",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": []},
            400,
            "invalid_request_error",
            "[] is too short - 'messages'",
        ),
        ("/v1/chat/completions", {"model": MODEL}, 400, "invalid_request_error", "[] is too short - 'messages'"),
        ("/v1/chat/completions", {"model": "nope", "messages": USER}, 404, "not_found_error", "model 'nope' not found"),
        ("/v1/chat/completions", {"model": "", "messages": USER}, 400, "invalid_request_error", "model is required"),
        (
            "/v1/chat/completions",
            {"model": "a b", "messages": USER},
            400,
            "invalid_request_error",
            "invalid model name",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": USER, "n": 2},
            400,
            "invalid_request_error",
            "invalid value for 'n': 2 (only one choice per request is supported)",
        ),
        (
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}
                ],
            },
            400,
            "invalid_request_error",
            "image URLs are not currently supported, please use base64 encoded data instead",
        ),
        (
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        ],
                    }
                ],
            },
            400,
            "invalid_request_error",
            f'"{MODEL}" does not support vision',
        ),
        (
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]}
                ],
            },
            400,
            "invalid_request_error",
            "invalid tool call arguments",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": USER, "logprobs": True, "top_logprobs": 21},
            400,
            "invalid_request_error",
            "top_logprobs must be between 0 and 20",
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": USER, "reasoning_effort": "high"},
            400,
            "invalid_request_error",
            f'"{MODEL}" does not support thinking',
        ),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": USER, "stream": True},
            404,
            "not_found_error",
            None,
        ),
        ("/v1/completions", {"model": "nope", "prompt": "x"}, 404, "not_found_error", "model 'nope' not found"),
        (
            "/v1/completions",
            {"model": MODEL, "prompt": "x", "stop": ["a", 1]},
            400,
            "invalid_request_error",
            "invalid type for 'stop' field: float64",
        ),
        (
            "/v1/completions",
            {"model": MODEL, "prompt": "def f(", "suffix": "return 1"},
            400,
            "invalid_request_error",
            f"registry.ollama.ai/library/{MODEL} does not support insert",
        ),
        (
            "/v1/embeddings",
            {"model": "nope", "input": "x"},
            404,
            "not_found_error",
            'model "nope" not found, try pulling it first',
        ),
        ("/v1/embeddings", {"model": MODEL, "input": []}, 400, "invalid_request_error", "invalid input"),
        (
            "/v1/embeddings",
            {"model": MODEL, "input": "x", "encoding_format": "int8"},
            400,
            "invalid_request_error",
            "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64'].",
        ),
        ("/v1/embeddings", {"model": MODEL, "input": [1, 2]}, 400, "invalid_request_error", "invalid input type"),
    ],
)
def test_error_shapes(
    http: httpx.Client, path: str, body: bytes | dict[str, Any], status: int, kind: str, message: str | None
) -> None:
    if message is None:  # a streaming request that fails before its first chunk gets a real status
        body = {**body, "model": "nope"}
        message = "model 'nope' not found"
    response = (
        http.post(path, content=body, headers={"content-type": "application/json"})
        if isinstance(body, bytes)
        else http.post(path, json=body)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": {"message": message, "type": kind, "param": None, "code": None}}


def test_sdk_raises_typed_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=USER)
    assert missing.value.status_code == 404
    assert missing.value.body == {
        "message": "model 'nope' not found",
        "type": "not_found_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=[])
    assert bad.value.body == {
        "message": "[] is too short - 'messages'",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_unknown_v1_routes_answer_like_ollama(http: httpx.Client) -> None:
    response = http.get("/v1/models/hf.co/someone/model")
    assert (response.status_code, response.text) == (404, "404 page not found")
    assert http.get("/v1/chat/completions").status_code == 405


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ServerBusy(), "server busy, please try again.  maximum pending requests exceeded"),
        (RuntimeError("llama_decode failed (-1)"), "llama_decode failed (-1)"),
    ],
)
def test_error_after_stream_began_is_final_event(error: Exception, message: str) -> None:
    """Deterministic: an event stream that fails after its first event (a real engine error cannot be timed)."""

    async def events() -> AsyncIterator[Event]:
        yield Output("Hi")
        raise error

    async def body() -> bytes:
        items = events()
        first = await anext(items)
        stream = ChatCompletionStream(model=MODEL, id="chatcmpl-1", created=0, include_usage=False)
        response = sse_response(first, items, stream.feed)
        assert response.headers["content-type"] == "text/event-stream"
        return b"".join([chunk async for chunk in response.body_iterator])

    frames = asyncio.run(body()).decode().split("\n\n")
    assert frames[-1] == ""
    assert json.loads(frames[0].removeprefix("data: "))["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}
    assert json.loads(frames[-2].removeprefix("data: ")) == {
        "error": {"message": message, "type": "api_error", "param": None, "code": None}
    }
    assert len(frames) == 3
