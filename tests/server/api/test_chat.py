"""POST /api/chat against a real server and the real smollm2 model (ChatML template with tools)."""

from __future__ import annotations

import json

import httpx
import pytest

GREEDY = {"temperature": 0, "num_predict": 12}
HELLO = [{"role": "user", "content": "Hello! Who are you?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city"}},
            "required": ["city"],
        },
    },
}


def chat(api: httpx.Client, **body) -> httpx.Response:
    return api.post("/api/chat", json={"model": "smollm2:135m", **body})


def ndjson(response: httpx.Response) -> list[dict]:
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def rendered(api: httpx.Client, **body) -> str:
    response = chat(api, _debug_render_only=True, **body)
    assert response.status_code == 200, response.text
    return response.json()["_debug_info"]["rendered_template"]


def test_streaming_chat_chunks_and_final_metrics(api: httpx.Client) -> None:
    chunks = ndjson(chat(api, messages=HELLO, options=GREEDY))
    assert all(c["message"]["role"] == "assistant" for c in chunks)
    assert chunks[-1]["done"] is True and chunks[-1]["done_reason"] == "length"
    assert chunks[-1]["message"]["content"] == ""
    assert chunks[-1]["eval_count"] == 12
    assert "context" not in chunks[-1]
    text = "".join(c["message"]["content"] for c in chunks)
    single = chat(api, messages=HELLO, options=GREEDY, stream=False).json()
    assert single["message"]["content"] == text


def test_modelfile_system_is_prepended_only_without_a_system_message(api: httpx.Client) -> None:
    default = rendered(api, messages=HELLO)
    assert default.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    custom = rendered(api, messages=[{"role": "system", "content": "Be terse."}, *HELLO])
    assert custom.startswith("<|im_start|>system\nBe terse.<|im_end|>")
    assert "SmolLM" not in custom


def test_trailing_assistant_message_is_a_prefill(api: httpx.Client) -> None:
    prompt = rendered(api, messages=[*HELLO, {"role": "assistant", "content": "I am"}])
    assert prompt.endswith("<|im_start|>assistant\nI am")


def test_tools_are_rendered_and_tool_calls_parsed(api: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "You call tools. Answer only with a tool call."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    prompt = rendered(api, messages=messages, tools=[WEATHER_TOOL])
    assert "<tools>" in prompt and '"name":"get_weather"' in prompt
    history = [
        *messages,
        {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "18 degrees", "tool_name": "get_weather"},
    ]
    replay = rendered(api, messages=history, tools=[WEATHER_TOOL])
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris"}}\n</tool_call>' in replay
    assert "<tool_response>\n18 degrees\n</tool_response>" in replay
    body = chat(
        api, messages=messages, tools=[WEATHER_TOOL], options={"temperature": 0, "num_predict": 60}, stream=False
    )
    message = body.json()["message"]
    for call in message.get("tool_calls") or []:
        assert call["id"].startswith("call_") and len(call["id"]) == 13
        assert call["function"]["name"] == "get_weather"
        assert isinstance(call["function"]["arguments"], dict)


def test_prefix_reuse_reduces_evaluated_prompt_tokens(api: httpx.Client) -> None:
    first = chat(api, messages=HELLO, options=GREEDY, stream=False).json()
    turn = [*HELLO, first["message"], {"role": "user", "content": "And what can you do?"}]
    second = chat(api, messages=turn, options=GREEDY, stream=False).json()
    full = chat(api, messages=turn, options=GREEDY, stream=False, _debug_render_only=True).json()
    assert second["prompt_eval_count"] < len(full["_debug_info"]["rendered_template"]) // 2


def test_truncate_drops_oldest_turns_to_fit(api: httpx.Client) -> None:
    long_history = []
    for i in range(40):
        long_history += [
            {"role": "user", "content": f"Question {i}: " + "tell me more " * 10},
            {"role": "assistant", "content": f"Answer {i}: " + "here is more " * 10},
        ]
    messages = [{"role": "system", "content": "Keep me."}, *long_history, {"role": "user", "content": "Last one?"}]
    body = chat(api, messages=messages, options={**GREEDY, "num_ctx": 512, "num_predict": 4}, stream=False)
    assert body.status_code == 200, body.text
    assert body.json()["prompt_eval_count"] <= 512


def test_load_and_unload_flows(api: httpx.Client) -> None:
    loaded = chat(api, messages=[]).json()
    assert loaded == {
        "model": "smollm2:135m",
        "created_at": loaded["created_at"],
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "load",
    }
    unloaded = chat(api, messages=[], keep_alive=0).json()
    assert unloaded["done_reason"] == "unload"
    assert api.get("/api/ps").json() == {"models": []}


def test_tools_on_a_model_without_tool_support(api: httpx.Client) -> None:
    plain = (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n"
    )
    assert api.post(
        "/api/create", json={"model": "plain", "from": "smollm2:135m", "template": plain, "stream": False}
    ).is_success
    response = api.post("/api/chat", json={"model": "plain", "messages": HELLO, "tools": [WEATHER_TOOL]})
    assert (response.status_code, response.json()) == (
        400,
        {"error": "registry.ollama.ai/library/plain:latest does not support tools"},
    )


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "", "messages": HELLO}, 400, "model is required"),
        ({"model": "a//b", "messages": HELLO}, 400, "invalid model name"),
        ({"model": "nope", "messages": HELLO}, 404, "model 'nope' not found"),
        (
            {"model": "smollm2:135m", "messages": HELLO, "top_logprobs": -1},
            400,
            "top_logprobs must be between 0 and 20",
        ),
        (
            {"model": "smollm2:135m", "messages": HELLO, "think": "high"},
            400,
            '"smollm2:135m" does not support thinking',
        ),
        (
            {"model": "smollm2:135m", "messages": "hi"},
            400,
            "json: cannot unmarshal string into Go struct field ChatRequest.messages of type []interface {}",
        ),
        (
            {"model": "smollm2:135m", "messages": HELLO, "options": {"stop": "x"}},
            500,
            'option "stop" must be of type array',
        ),
    ],
)
def test_error_rows(api: httpx.Client, body: dict, status: int, error: str) -> None:
    response = api.post("/api/chat", json=body)
    assert (response.status_code, response.json()) == (status, {"error": error})


def test_logprobs_with_top_alternatives(api: httpx.Client) -> None:
    body = chat(
        api, messages=HELLO, options={"temperature": 0, "num_predict": 3}, logprobs=True, top_logprobs=2, stream=False
    )
    logprobs = body.json()["logprobs"]
    assert len(logprobs) == 3
    for item in logprobs:
        assert item["logprob"] <= 0 and isinstance(item["token"], str)
        assert len(item["top_logprobs"]) == 2
        assert item["top_logprobs"][0]["logprob"] >= item["top_logprobs"][1]["logprob"]


def test_thinking_model_accepts_think(api: httpx.Client) -> None:
    template = (
        "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
        "{{ if .Think }}<think>{{ end }}"
    )
    created = api.post("/api/create", json={"model": "thinker", "from": "smollm2:135m", "template": template})
    assert created.status_code == 200
    assert "thinking" in api.post("/api/show", json={"model": "thinker"}).json()["capabilities"]
    body = api.post(
        "/api/chat",
        json={"model": "thinker", "messages": HELLO, "think": True, "options": GREEDY, "stream": False},
    )
    assert body.status_code == 200, body.text
    message = body.json()["message"]
    assert message["role"] == "assistant"
    assert isinstance(message.get("thinking", ""), str)
