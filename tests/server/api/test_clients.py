"""The official `ollama` Python client against Corral: every call the issue names must work unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator

import ollama
import pytest

OPTIONS = {"temperature": 0, "num_predict": 16}


@pytest.fixture
def client(model_server) -> Iterator[ollama.Client]:
    with ollama.Client(host=model_server.url) as client:
        yield client


def test_list_show_and_ps(client: ollama.Client) -> None:
    assert [m.model for m in client.list().models] == ["smollm2:135m"]
    shown = client.show("smollm2:135m")
    assert shown.modelinfo is not None and shown.modelinfo["general.architecture"] == "llama"
    assert shown.details.quantization_level == "Q4_1"
    client.generate(model="smollm2:135m", prompt="")
    (running,) = client.ps().models
    assert running.model == "smollm2:135m" and running.size and running.expires_at is not None


def test_generate_stream_and_not(client: ollama.Client) -> None:
    whole = client.generate(model="smollm2:135m", prompt="Why is the sky blue?", options=OPTIONS)
    parts = list(client.generate(model="smollm2:135m", prompt="Why is the sky blue?", options=OPTIONS, stream=True))
    assert whole.done and whole.eval_count == 16
    assert whole.response == "".join(p.response for p in parts)
    assert (
        whole.response == client.generate(model="smollm2:135m", prompt="Why is the sky blue?", options=OPTIONS).response
    )


def test_chat_stream_and_not(client: ollama.Client) -> None:
    messages = [{"role": "user", "content": "Say hi."}]
    whole = client.chat(model="smollm2:135m", messages=messages, options=OPTIONS)
    parts = list(client.chat(model="smollm2:135m", messages=messages, options=OPTIONS, stream=True))
    assert whole.message.role == "assistant"
    assert whole.message.content == "".join(p.message.content or "" for p in parts)


def test_chat_with_tools_round_trips(client: ollama.Client) -> None:
    def get_weather(city: str) -> str:
        """Get the current weather for a city.

        Args:
          city: The city name
        """
        return "sunny"

    response = client.chat(
        model="smollm2:135m",
        messages=[
            {"role": "system", "content": "Answer only with a tool call."},
            {"role": "user", "content": "What is the weather in Paris?"},
        ],
        tools=[get_weather],
        options={"temperature": 0, "num_predict": 60},
    )
    for call in response.message.tool_calls or []:
        assert call.function.name == "get_weather"
        assert isinstance(call.function.arguments, dict)


def test_structured_output_with_a_schema(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "sunny": {"type": "boolean"}},
        "required": ["city", "sunny"],
    }
    response = client.chat(
        model="smollm2:135m",
        messages=[{"role": "user", "content": "Is it sunny in Rome? Reply as JSON."}],
        format=schema,
        options={"temperature": 0, "num_predict": 80},
    )
    assert response.done_reason == "stop"
    value = json.loads(response.message.content)
    assert isinstance(value["city"], str) and isinstance(value["sunny"], bool)


def test_embed(client: ollama.Client) -> None:
    response = client.embed(model="smollm2:135m", input=["a", "b"])
    assert len(response.embeddings) == 2 and len(response.embeddings[0]) == 576


def test_errors_surface_as_response_errors(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="nope", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 404 and "not found" in caught.value.error
