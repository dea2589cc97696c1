"""Embeddings: unit vectors, model dimension, batching of inputs, truncation (smollm2 on the CPU)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.engine import EngineModel, LoadParams
from server.errors import BadRequest, CapabilityError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder(smollm2_path: Path) -> Iterator[EngineModel]:
    model = EngineModel.load(LoadParams(model_path=str(smollm2_path), num_ctx=64, num_thread=1, embedding=True))
    yield model
    model.close()


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_unit_vectors_of_the_model_dimension(embedder: EngineModel, kit: Any) -> None:
    texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Stock markets fell sharply today."]
    vectors, count = kit.run(embedder.embed(texts))
    assert len(vectors) == 3
    assert count == sum(len(embedder.tokenize(t, add_special=True)) for t in texts)
    for vector in vectors:
        assert len(vector) == 576
        assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-5)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])


def test_batched_inputs_match_single_inputs(embedder: EngineModel, kit: Any) -> None:
    texts = [f"sentence number {i} about topic {i * 7}" for i in range(20)]  # more inputs than one batch holds
    together, _ = kit.run(embedder.embed(texts))
    alone = [kit.run(embedder.embed([t]))[0][0] for t in texts[:3]]
    for a, b in zip(alone, together[:3], strict=True):
        assert cosine(a, b) == pytest.approx(1.0, abs=1e-4)


def test_truncation(embedder: EngineModel, kit: Any) -> None:
    long_text = "many words " * 200
    vectors, count = kit.run(embedder.embed([long_text], truncate=True))
    assert len(vectors[0]) == 576
    assert count == 64
    with pytest.raises(BadRequest, match="the input length exceeds the context length"):
        kit.run(embedder.embed([long_text], truncate=False))
    assert kit.run(embedder.embed([])) == ([], 0)


def test_embedding_models_do_not_generate(embedder: EngineModel, kit: Any) -> None:
    async def start() -> None:
        embedder.generate("hi", kit.sampling())

    with pytest.raises(CapabilityError):
        kit.run(start())


def test_a_generative_model_embeds_too(smollm2: EngineModel, kit: Any) -> None:
    vectors, _ = kit.run(smollm2.embed(["hello world"]))
    assert len(vectors[0]) == 576
