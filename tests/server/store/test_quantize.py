"""Quantization on create: type names and Ollama's errors, the refusal of already quantized weights, each
supported type from F16 weights (file type, config, size, a model that loads and generates), and the HTTP
progress lines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from server.engine import EngineModel, LoadParams, SamplingParams, Token
from server.errors import BadRequest
from server.store.create import CreateSpec, create_model
from server.store.gguf_info import read_gguf
from server.store.names import ModelName
from server.store.quantize import ONLY_FLOAT_SOURCES, PROGRESS_DIGEST, parse_type
from server.store.store import Store

from .creation import Statuses, create_from_directory, model_blob

SUPPORTED = (
    "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K"
)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("q4_K_M", "Q4_K_M"),
        ("Q4_K_M", "Q4_K_M"),
        ("q4_k", "Q4_K_M"),
        ("q4_K_S", "Q4_K_S"),
        ("q8_0", "Q8_0"),
        ("f16", "F16"),
        ("F32", "F32"),
        ("bf16", "BF16"),
        ("q5_K_M", "Q5_K_M"),
        ("q6_K", "Q6_K"),
        ("q4_0", "Q4_0"),
    ],
)
def test_type_names_are_case_insensitive_with_ollamas_aliases(text: str, name: str) -> None:
    assert parse_type(text).name == name


@pytest.mark.parametrize("text", ["q3_X", "Q9_0", "", "int4"])
def test_unknown_type_gets_ollamas_error(text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_type(text)
    assert str(caught.value) == f"unsupported quantization type {text} - supported types are {SUPPORTED}"


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
        if p.name != ".corral.lock"
    }


def test_quantized_weights_are_refused_with_ollamas_error_and_nothing_written(tmp_path: Path, smollm2_path) -> None:
    store = Store(tmp_path / "models")
    digest = store.blobs.import_file(smollm2_path).digest
    before = snapshot(store.root)
    statuses = Statuses()
    spec = CreateSpec(name=ModelName.parse("smol-q8"), files={"m.gguf": digest}, quantize="q8_0")
    with pytest.raises(BadRequest) as caught:
        create_model(store, spec, statuses)
    assert str(caught.value) == ONLY_FLOAT_SOURCES
    assert statuses == []
    assert snapshot(store.root) == before


@pytest.fixture(scope="module")
def f16_store(tmp_path_factory: pytest.TempPathFactory, smollm2_export) -> Store:
    """A store holding ``smol-f16``: smollm2's weights converted from safetensors to F16 by Corral."""
    store = Store(tmp_path_factory.mktemp("quantize") / "models")
    statuses = Statuses()
    create_from_directory(store, "smol-f16", smollm2_export.safetensors, statuses)
    assert statuses[0] == "converting model"
    return store


# Bits per weight of each type's bulk tensors (llama.cpp's block sizes); the whole file comes close to F16 / bpw.
BITS = {"Q8_0": 8.5, "Q4_0": 4.5, "Q4_K_S": 4.5, "Q4_K_M": 4.5, "Q5_K_M": 5.5, "Q6_K": 6.5625}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["q8_0", "q4_0", "q4_K_S", "q4_K_M", "q5_K_M", "q6_K"])
def test_f16_weights_quantize_to_each_type(f16_store: Store, kind: str) -> None:
    name = kind.upper()
    statuses = Statuses()
    create_model(f16_store, CreateSpec(name=ModelName.parse(f"smol-{kind}"), from_="smol-f16", quantize=kind), statuses)
    assert statuses[0] == f"quantizing F16 model to {name}"
    assert statuses[1] == "verifying conversion"
    assert statuses[-2:] == ["writing manifest", "success"]
    stored = f16_store.get(ModelName.parse(f"smol-{kind}"))
    assert stored is not None
    assert f16_store.config(stored).file_type == name
    info = read_gguf(model_blob(f16_store, f"smol-{kind}"))
    assert info.file_type == name
    ratio = model_blob(f16_store, "smol-f16").stat().st_size / model_blob(f16_store, f"smol-{kind}").stat().st_size
    # Small models keep some tensors at higher precision (the shared embedding/output matrix above all), so the
    # file shrinks by somewhat less than 16 / bits; never by more.
    assert 0.6 * 16 / BITS[name] <= ratio <= 16 / BITS[name] * 1.05, ratio


def greedy(path: Path, prompt: str, n: int = 16) -> str:
    async def run() -> str:
        model = EngineModel.load(LoadParams(model_path=str(path), num_ctx=256))
        try:
            parts = []
            async for event in model.generate(prompt, SamplingParams(temperature=0, num_predict=n)):
                if isinstance(event, Token):
                    parts.append(event.text)
            return "".join(parts)
        finally:
            model.close()

    return asyncio.run(run())


@pytest.mark.slow
def test_q4_k_m_model_loads_and_generates(f16_store: Store) -> None:
    create_model(
        f16_store, CreateSpec(name=ModelName.parse("smol-gen"), from_="smol-f16", quantize="Q4_K_M"), Statuses()
    )
    text = greedy(
        model_blob(f16_store, "smol-gen"),
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    )
    assert "Paris" in text


@pytest.mark.slow
def test_http_create_streams_quantization_progress_and_show_reports_the_level(start_server, f16_store: Store) -> None:
    server = start_server(f16_store.root)
    with server.client() as http:
        with http.stream(
            "POST", "/api/create", json={"model": "smol-http", "from": "smol-f16", "quantize": "q8_0"}
        ) as r:
            assert r.status_code == 200
            lines = [json.loads(line) for line in r.iter_lines() if line]
        progress = [line for line in lines if line["status"] == "quantizing F16 model to Q8_0"]
        assert progress, lines
        assert all(line["digest"] == PROGRESS_DIGEST for line in progress)
        total = model_blob(f16_store, "smol-f16").stat().st_size
        assert all(line["total"] == total for line in progress)
        completed = [line.get("completed", 0) for line in progress]
        assert completed == sorted(completed) and completed[-1] > total * 0.9
        statuses = [line["status"] for line in lines]
        assert statuses[statuses.index("verifying conversion") :][-2:] == ["writing manifest", "success"]
        shown = http.post("/api/show", json={"model": "smol-http"}).json()
        assert shown["details"]["quantization_level"] == "Q8_0"
        assert shown["model_info"]["general.file_type"] == 7
        tags = {m["name"]: m for m in http.get("/api/tags").json()["models"]}
        assert tags["smol-http:latest"]["details"]["quantization_level"] == "Q8_0"
        refused = http.post("/api/create", json={"model": "x", "from": "smol-http", "quantize": "q4_K_M"})
        assert (refused.status_code, refused.json()) == (400, {"error": ONLY_FLOAT_SOURCES})
        unknown = http.post("/api/create", json={"model": "x", "from": "smol-f16", "quantize": "q3_X"})
        assert unknown.status_code == 400
        assert unknown.json()["error"].startswith("unsupported quantization type q3_X - supported types are F32, F16")
