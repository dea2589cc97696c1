"""Constrained output: format "json" and JSON schemas become llama.cpp grammars; the output always parses."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from server.engine import EngineModel, SamplingParams
from server.errors import InvalidOption

pytestmark = pytest.mark.slow

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "pets": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["name", "age", "pets"],
}


def test_json_mode_output_parses(smollm2: EngineModel, kit: Any) -> None:
    prompt = kit.chatml("Give me a JSON object describing a cat")
    result = kit.generate(smollm2, prompt, temperature=0, num_predict=200, format="json")
    assert result.done.done_reason == "stop"
    assert isinstance(json.loads(result.text), dict)


def test_json_mode_parses_with_sampling_too(smollm2: EngineModel, kit: Any) -> None:
    result = kit.generate(
        smollm2, kit.chatml("Tell me about Paris."), temperature=1.0, seed=3, num_predict=150, format="json"
    )
    if result.done.done_reason == "stop":
        assert isinstance(json.loads(result.text), dict)
    else:  # cut by num_predict: still a JSON prefix
        assert result.text.lstrip().startswith("{")


def test_schema_output_validates(smollm2: EngineModel, kit: Any) -> None:
    result = kit.generate(smollm2, kit.chatml("Describe a person."), temperature=0, num_predict=120, format=PERSON)
    assert result.done.done_reason == "stop"
    jsonschema.validate(json.loads(result.text), PERSON)


def test_an_unusable_schema_is_an_invalid_option(smollm2: EngineModel, kit: Any) -> None:
    async def start() -> None:
        smollm2.generate("x", SamplingParams(format={"type": "object", "properties": {"a": {"$ref": "#/nope"}}}))

    with pytest.raises(InvalidOption):
        kit.run(start())
    with pytest.raises(InvalidOption, match="invalid format"):
        kit.run(_start_with_format(smollm2, "yaml"))


async def _start_with_format(model: EngineModel, fmt: str) -> None:
    model.generate("x", SamplingParams(format=fmt))
