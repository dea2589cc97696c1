"""Round trips through the official ``ollama`` and ``openai`` Python clients: their models must parse every
response (reference §8 lists the keys and types they require)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import openai
import pytest
from ollama import Client, ResponseError

from conformance import expect
from conformance.calls import PROMPT, SEED, display_name, greedy, user
from conformance.test_tools import FEW_SHOT, WEATHER_TOOL

pytestmark = pytest.mark.ref("8")


# --- ollama ----------------------------------------------------------------------------------------------


def test_ollama_list(ollama_client: Client, model: str) -> None:
    models = ollama_client.list().models
    item = next((m for m in models if m.model == display_name(model)), None)
    expect.check(item is not None, "ollama list()", f"a model {display_name(model)!r}", [m.model for m in models])
    assert item is not None
    expect.check(isinstance(item.modified_at, datetime), "modified_at", "a datetime", item.modified_at)
    expect.check(isinstance(item.size, int) and item.size > 0, "size", "a positive int", item.size)


def test_ollama_show(ollama_client: Client, model: str) -> None:
    shown = ollama_client.show(model)
    expect.check(shown.details is not None, "ollama show() details", "present", shown)
    expect.check(isinstance(shown.modelinfo, Mapping), "ollama show() model_info", "a mapping", shown.modelinfo)


def test_ollama_generate(ollama_client: Client, model: str) -> None:
    result = ollama_client.generate(model=model, prompt=PROMPT, options=greedy(4))
    expect.equal(result.done, True, "generate done")
    expect.check(isinstance(result.response, str), "generate response", "a string", result.response)
    expect.check(isinstance(result.eval_count, int), "eval_count", "an int", result.eval_count)


def test_ollama_generate_stream(ollama_client: Client, model: str) -> None:
    parts = list(ollama_client.generate(model=model, prompt=PROMPT, options=greedy(4), stream=True))
    expect.equal(parts[-1].done, True, "last streamed part done")
    expect.equal(parts[-1].done_reason in ("stop", "length"), True, "done_reason is stop or length")


def test_ollama_chat(ollama_client: Client, model: str) -> None:
    result = ollama_client.chat(model=model, messages=[user(PROMPT)], options=greedy(4))
    expect.equal(result.message.role, "assistant", "chat message role")
    expect.check(isinstance(result.message.content, str), "chat content", "a string", result.message)


def test_ollama_chat_stream(ollama_client: Client, model: str) -> None:
    parts = list(ollama_client.chat(model=model, messages=[user(PROMPT)], options=greedy(4), stream=True))
    expect.equal(parts[-1].done, True, "last streamed part done")


def test_ollama_chat_format_schema(ollama_client: Client, model: str) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    result = ollama_client.chat(model=model, messages=[user("Is water wet?")], format=schema, options=greedy(24))
    expect.check(isinstance(json.loads(result.message.content or ""), dict), "schema reply", "a JSON object", result)


@pytest.mark.needs("tools")
def test_ollama_chat_tools(ollama_client: Client, model: str) -> None:
    result = ollama_client.chat(model=model, messages=FEW_SHOT, tools=[WEATHER_TOOL], options=greedy(40))
    calls = result.message.tool_calls or []
    expect.check(bool(calls), "tool_calls", "at least one", result.message)
    expect.check(isinstance(calls[0].function.arguments, Mapping), "arguments", "a mapping", calls[0])


def test_ollama_embed(ollama_client: Client, embed_model: str) -> None:
    result = ollama_client.embed(model=embed_model, input=["a", "b"])
    expect.equal(len(result.embeddings), 2, "number of embeddings")


def test_ollama_embeddings_legacy(ollama_client: Client, embed_model: str) -> None:
    expect.check(
        bool(ollama_client.embeddings(model=embed_model, prompt="a").embedding), "embedding", "non-empty", None
    )


def test_ollama_ps(ollama_client: Client, model: str) -> None:
    ollama_client.generate(model=model, prompt="", keep_alive="5m")
    running = ollama_client.ps().models
    item = next((m for m in running if m.model == display_name(model) or m.name == display_name(model)), None)
    expect.check(item is not None, "ollama ps()", f"the loaded {model}", running)
    assert item is not None
    expect.check(isinstance(item.expires_at, datetime), "expires_at", "a datetime", item.expires_at)


def test_ollama_copy_delete(ollama_client: Client, model: str, scratch: Callable[..., str]) -> None:
    name = scratch()
    expect.equal(ollama_client.copy(model, name).status, "success", "copy status")
    expect.equal(ollama_client.delete(name).status, "success", "delete status")


def test_ollama_create(ollama_client: Client, model: str, scratch: Callable[..., str]) -> None:
    name = scratch()
    result = ollama_client.create(model=name, from_=model, system="Be brief.", parameters={"temperature": 0.1})
    expect.equal(result.status, "success", "create status")
    modelfile = ollama_client.show(name).modelfile or ""
    expect.check("Be brief." in modelfile, "modelfile of the created model", "its SYSTEM line", modelfile[-200:])


def test_ollama_create_blob(ollama_client: Client) -> None:
    data = b"conformance client blob " + os.urandom(16)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blob.bin"
        path.write_bytes(data)
        digest = ollama_client.create_blob(path)
    expect.equal(digest, "sha256:" + hashlib.sha256(data).hexdigest(), "create_blob digest")


def test_ollama_error_unknown_model(ollama_client: Client) -> None:
    with pytest.raises(ResponseError) as caught:
        ollama_client.generate(model="conformance-absent", prompt="x")
    expect.equal(caught.value.status_code, 404, "ResponseError status_code")
    expect.equal(caught.value.error, "model 'conformance-absent' not found", "ResponseError error")


def test_ollama_error_streaming(ollama_client: Client) -> None:
    with pytest.raises(ResponseError) as caught:
        list(ollama_client.chat(model="conformance-absent", messages=[user("x")], stream=True))
    expect.equal(caught.value.status_code, 404, "ResponseError status_code (streaming)")


# --- openai ----------------------------------------------------------------------------------------------


def test_openai_chat(openai_client: openai.OpenAI, model: str) -> None:
    result = openai_client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], temperature=0, seed=SEED, max_tokens=8
    )
    expect.equal(result.choices[0].message.role, "assistant", "role")
    expect.check(result.usage is not None, "usage", "present", result)


def test_openai_chat_stream(openai_client: openai.OpenAI, model: str) -> None:
    stream = openai_client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
        temperature=0,
        seed=SEED,
        max_tokens=8,
    )
    chunks = list(stream)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    expect.check(len(reasons) == 1, "finish_reason in the stream", "exactly one", reasons)
    expect.check(chunks[-1].usage is not None, "last chunk usage", "present with include_usage", chunks[-1])


@pytest.mark.needs("tools")
def test_openai_chat_tools(openai_client: openai.OpenAI, model: str) -> None:
    from conformance.test_tools import OPENAI_FEW_SHOT

    result = openai_client.chat.completions.create(
        model=model,
        messages=OPENAI_FEW_SHOT,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        temperature=0,
        seed=SEED,
        max_tokens=40,
    )
    calls = result.choices[0].message.tool_calls or []
    expect.check(bool(calls), "tool_calls", "at least one", result.choices[0])
    function = getattr(calls[0], "function", None)
    expect.check(
        isinstance(json.loads(getattr(function, "arguments", "") or "null"), dict), "arguments", "JSON", calls[0]
    )


def test_openai_completions(openai_client: openai.OpenAI, model: str) -> None:
    result = openai_client.completions.create(model=model, prompt=PROMPT, temperature=0, seed=SEED, max_tokens=8)
    expect.check(isinstance(result.choices[0].text, str), "completion text", "a string", result)


def test_openai_embeddings_default_base64(openai_client: openai.OpenAI, embed_model: str) -> None:
    result = openai_client.embeddings.create(model=embed_model, input=["a", "b"])
    expect.equal([d.index for d in result.data], [0, 1], "indexes")
    expect.check(all(isinstance(x, float) for x in result.data[0].embedding), "vector", "floats", None)


def test_openai_models_list(openai_client: openai.OpenAI, model: str) -> None:
    ids = [m.id for m in openai_client.models.list()]
    expect.check(display_name(model) in ids, "models.list ids", f"{display_name(model)!r} among them", ids)


def test_openai_models_retrieve(openai_client: openai.OpenAI, model: str) -> None:
    expect.equal(openai_client.models.retrieve(model).id, model, "retrieved id")


def test_openai_not_found(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="conformance-absent", messages=[{"role": "user", "content": "x"}])


def test_openai_bad_request(openai_client: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError):
        openai_client.chat.completions.create(model=model, messages=[])
