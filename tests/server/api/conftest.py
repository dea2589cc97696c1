from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.settings import Settings
from server.store.create import CreateSpec, create_model
from server.store.modelfile import parse_modelfile
from server.store.names import ModelName
from server.store.store import Store
from tests.server.conftest import LiveServer, free_port

REPO = Path(__file__).resolve().parents[3]


@cache
def file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def upload(http: httpx.Client, path: Path) -> str:
    digest = file_digest(path)
    with path.open("rb") as body:
        response = http.post(f"/api/blobs/{digest}", content=body)
    assert response.status_code in (200, 201), response.text
    return digest


def stream_lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


@pytest.fixture
def create_smollm2(http: httpx.Client, smollm2_gguf: Path) -> Callable[..., dict[str, Any]]:
    """Create a model from the real SmolLM2 GGUF with the repo's Modelfile layers; returns the request sent."""
    modelfile = parse_modelfile((REPO / "modelfiles" / "smollm2-135m.Modelfile").read_bytes())

    def create(name: str = "smollm2:135m", **extra: Any) -> dict[str, Any]:
        body = {
            "model": name,
            "files": {"model.gguf": upload(http, smollm2_gguf)},
            "template": modelfile.template,
            "system": modelfile.system,
            "parameters": modelfile.parameters,
            "license": list(modelfile.licenses),
            "stream": False,
            **extra,
        }
        response = http.post("/api/create", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "success"}
        return body

    return create


def seed_store(models: Path, gguf: Path, name: str = "smollm2:135m") -> None:
    """Create ``name`` from the repo's smollm2 Modelfile layers directly in the store at ``models``."""
    store = Store(models)
    modelfile = parse_modelfile((REPO / "modelfiles" / "smollm2-135m.Modelfile").read_bytes())
    digest = store.blobs.import_file(gguf).digest
    spec = CreateSpec(
        name=ModelName.parse(name),
        files={"model.gguf": digest},
        template=modelfile.template,
        system=modelfile.system,
        parameters=modelfile.parameters,
        license=tuple(modelfile.licenses),
    )
    create_model(store, spec, lambda _: None)


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[LiveServer]:
    """One server per test module with smollm2:135m in its store (the model loads once per module)."""
    models = tmp_path_factory.mktemp("models")
    seed_store(models, smollm2_gguf)
    server = LiveServer(Settings.from_env({"OLLAMA_HOST": f"127.0.0.1:{free_port()}", "OLLAMA_MODELS": str(models)}))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(model_server: LiveServer) -> Iterator[httpx.Client]:
    with model_server.client() as client:
        yield client
