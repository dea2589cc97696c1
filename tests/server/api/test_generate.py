"""POST /api/generate against a real server and the real smollm2 model."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import gguf
import httpx
import numpy
import pytest

GREEDY = {"temperature": 0, "num_predict": 12}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def ndjson(response: httpx.Response) -> list[dict]:
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def generate(api: httpx.Client, **body) -> httpx.Response:
    return api.post("/api/generate", json={"model": "smollm2:135m", **body})


def test_streams_ndjson_by_default_with_final_metrics(api: httpx.Client) -> None:
    chunks = ndjson(generate(api, prompt="Why is the sky blue?", options=GREEDY))
    assert all(not c["done"] for c in chunks[:-1]) and chunks[-1]["done"]
    assert all(RFC3339_UTC.match(c["created_at"]) for c in chunks)
    final = chunks[-1]
    assert final["done_reason"] == "length"
    assert final["eval_count"] == 12
    assert final["response"] == ""
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int) and final[key] > 0
    assert final["total_duration"] >= final["eval_duration"]
    assert final["prompt_eval_count"] > 0
    assert isinstance(final["context"], list) and len(final["context"]) >= 12
    assert "".join(c["response"] for c in chunks[:-1])


def test_stream_false_is_one_object_equal_to_the_joined_stream(api: httpx.Client) -> None:
    streamed = ndjson(generate(api, prompt="Name three colors.", options=GREEDY))
    single = generate(api, prompt="Name three colors.", options=GREEDY, stream=False)
    assert single.headers["content-type"] == "application/json; charset=utf-8"
    body = single.json()
    assert body["done"] is True
    assert body["response"] == "".join(c["response"] for c in streamed)


def test_temperature_zero_is_deterministic(api: httpx.Client) -> None:
    texts = {
        generate(api, prompt="Tell me a story.", options=GREEDY, stream=False).json()["response"] for _ in range(3)
    }
    assert len(texts) == 1


def test_same_seed_reproduces(api: httpx.Client) -> None:
    options = {"temperature": 1.0, "seed": 42, "num_predict": 16}
    first = generate(api, prompt="Write a word.", options=options, stream=False).json()["response"]
    second = generate(api, prompt="Write a word.", options=options, stream=False).json()["response"]
    assert first == second


def test_stop_sequence_cuts_and_never_appears(api: httpx.Client) -> None:
    options = {"temperature": 0, "num_predict": 24}
    text = generate(api, prompt="Tell me about the sea.", options=options, stream=False).json()["response"]
    # A stop string taken from the middle of the greedy output: the cut must end right before it.
    middle = len(text) // 2
    stop = text[middle : middle + 3]
    expected = text[: text.index(stop)]
    cut = generate(api, prompt="Tell me about the sea.", options={**options, "stop": [stop]}, stream=False).json()
    assert cut["response"] == expected
    assert stop not in cut["response"]
    assert cut["done_reason"] == "stop"


def test_format_json_output_parses(api: httpx.Client) -> None:
    body = generate(
        api,
        prompt="Describe a cat as JSON with keys name and age.",
        format="json",
        options={"temperature": 0, "num_predict": 60},
        stream=False,
    ).json()
    if body["done_reason"] == "stop":
        json.loads(body["response"])


def test_json_schema_is_obeyed(api: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    body = generate(
        api,
        prompt="A cat called Tom, age 3.",
        format=schema,
        options={"temperature": 0, "num_predict": 80},
        stream=False,
    ).json()
    assert body["done_reason"] == "stop", body
    value = json.loads(body["response"])
    assert isinstance(value["name"], str) and isinstance(value["age"], int)


def test_raw_mode_skips_template_and_returns_no_context(api: httpx.Client) -> None:
    body = generate(api, prompt="The capital of France is", raw=True, options=GREEDY, stream=False).json()
    assert "context" not in body
    rendered = generate(api, prompt="hi", raw=True, _debug_render_only=True).json()
    assert rendered["_debug_info"]["rendered_template"] == "hi"


def test_debug_render_only_shows_the_templated_prompt(api: httpx.Client) -> None:
    body = generate(api, prompt="Hello", system="Be brief.", _debug_render_only=True).json()
    assert body["done"] is False and body["response"] == ""
    assert body["_debug_info"]["rendered_template"] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    )
    default_system = generate(api, prompt="Hello", _debug_render_only=True).json()
    assert "You are a helpful AI assistant named SmolLM" in default_system["_debug_info"]["rendered_template"]


def test_template_override(api: httpx.Client) -> None:
    body = generate(api, prompt="X", template="Q: {{ .Prompt }} A:", _debug_render_only=True).json()
    assert body["_debug_info"]["rendered_template"] == "Q: X A:"


def test_context_continues_a_conversation(api: httpx.Client) -> None:
    first = generate(api, prompt="My name is Ada.", options=GREEDY, stream=False).json()
    second = generate(api, prompt="What is my name?", context=first["context"], options=GREEDY, stream=False).json()
    assert second["prompt_eval_count"] > 0
    assert second["context"][: len(first["context"])] == first["context"]


def test_load_and_unload_flows(api: httpx.Client) -> None:
    loaded = generate(api)
    assert loaded.headers["content-type"].startswith("application/json")
    body = loaded.json()
    assert (body["done"], body["done_reason"], body["response"]) == (True, "load", "")
    assert [m["name"] for m in api.get("/api/ps").json()["models"]] == ["smollm2:135m"]
    unloaded = generate(api, keep_alive=0).json()
    assert (unloaded["done"], unloaded["done_reason"]) == (True, "unload")
    assert api.get("/api/ps").json() == {"models": []}
    again = generate(api, keep_alive=0).json()
    assert again["done_reason"] == "unload", "unloading a model that is not loaded still succeeds"


def test_ps_reports_the_loaded_model(api: httpx.Client) -> None:
    generate(api, keep_alive="10m")
    (model,) = api.get("/api/ps").json()["models"]
    assert model["name"] == model["model"] == "smollm2:135m"
    assert model["size"] > 50_000_000 and model["size_vram"] == 0
    assert model["context_length"] == 2048
    assert len(model["digest"]) == 64
    assert model["details"]["quantization_level"] == "Q4_1"
    generate(api, keep_alive=-1)
    (forever,) = api.get("/api/ps").json()["models"]
    assert forever["expires_at"].startswith("2318-")


def test_keep_alive_zero_unloads_after_the_request(api: httpx.Client) -> None:
    generate(api, prompt="Hi", options=GREEDY, keep_alive=0, stream=False)
    for _ in range(500):
        if api.get("/api/ps").json()["models"] == []:
            break
    assert api.get("/api/ps").json() == {"models": []}


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": ""}, 404, "model '' not found"),
        ({"model": "../bad"}, 400, "invalid model name"),
        ({"model": "Missing-Model"}, 404, "model 'Missing-Model' not found"),
        (
            {"model": "smollm2:135m", "prompt": "x", "raw": True, "system": "s"},
            400,
            "raw mode does not support template, system, or context",
        ),
        ({"model": "smollm2:135m", "prompt": "x", "top_logprobs": 21}, 400, "top_logprobs must be between 0 and 20"),
        (
            {"model": "smollm2:135m", "prompt": "x", "think": "extreme"},
            400,
            'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)',
        ),
        ({"model": "smollm2:135m", "prompt": "x", "think": True}, 400, '"smollm2:135m" does not support thinking'),
        (
            {"model": "smollm2:135m", "prompt": "x", "suffix": "y"},
            400,
            "registry.ollama.ai/library/smollm2:135m does not support insert",
        ),
        ({"model": "smollm2:135m", "prompt": "x", "keep_alive": "300"}, 400, 'time: missing unit in duration "300"'),
        ({"model": "smollm2:135m", "prompt": "x", "keep_alive": True}, 400, "Unsupported type: 'bool'"),
        (
            {"model": "smollm2:135m", "prompt": "x", "options": {"temperature": "hot"}},
            500,
            'option "temperature" must be of type float32',
        ),
        (
            {"model": "smollm2:135m", "prompt": "x", "format": "yaml"},
            500,
            'invalid format: "yaml"; expected "json" or a valid JSON Schema object',
        ),
        (
            {"model": "smollm2:135m", "prompt": 7},
            400,
            "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string",
        ),
        ({"model": "smollm2:135m", "prompt": "x", "images": ["%%%"]}, 400, None),
    ],
)
def test_error_rows(api: httpx.Client, body: dict, status: int, error: str | None) -> None:
    response = api.post("/api/generate", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    if error is None:
        assert response.json()["error"]
    else:
        assert response.json() == {"error": error}


def test_unknown_options_and_fields_are_ignored(api: httpx.Client) -> None:
    body = generate(api, prompt="Hi", options={**GREEDY, "num_predict": 2, "no_such": 1}, whatever=True, stream=False)
    assert body.status_code == 200 and body.json()["eval_count"] == 2


def test_embedding_model_does_not_support_generate(api: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "embed.gguf"
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_uint32("bert.pooling_type", 1)
    writer.add_uint32("bert.context_length", 512)
    writer.add_tensor("w", numpy.zeros((4, 4), dtype="float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    digest = upload_bytes(api, path.read_bytes())
    assert api.post("/api/create", json={"model": "embedder", "files": {"e.gguf": digest}, "stream": False}).is_success
    assert api.post("/api/show", json={"model": "embedder"}).json()["capabilities"] == ["embedding"]
    response = api.post("/api/generate", json={"model": "embedder", "prompt": "x"})
    assert (response.status_code, response.json()) == (400, {"error": '"embedder" does not support generate'})


def upload_bytes(api: httpx.Client, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert api.post(f"/api/blobs/{digest}", content=data).is_success
    return digest


def test_client_disconnect_mid_stream_frees_the_slot(model_server, api: httpx.Client) -> None:
    """A client that goes away stops its generation: the lease is released and the model is idle again."""
    scheduler = model_server.server.config.app.state.inference.scheduler
    with api.stream(
        "POST",
        "/api/generate",
        # Greedy counting goes on far beyond what the test reads, so the request is still running when the
        # client leaves (a prompt the model could finish early would make this test pass vacuously).
        json={
            "model": "smollm2:135m",
            "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,",
            "raw": True,
            "options": {"temperature": 0, "num_predict": 100000},
        },
    ) as response:
        # Keep the line iterator referenced: dropping it closes httpx's byte stream, which is itself a
        # disconnect, and the server would (rightly) free the slot before the next assertion.
        lines = response.iter_lines()
        assert json.loads(next(lines))["done"] is False
        assert scheduler.running()[0].active == 1
    deadline = time.monotonic() + 60
    while scheduler.running()[0].active and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scheduler.running()[0].active == 0
    quick = generate(api, prompt="Hi", options={"temperature": 0, "num_predict": 3}, stream=False).json()
    assert quick["eval_count"] == 3
