from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.store.modelfile import parse_modelfile

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
def create_smollm2(http: httpx.Client, smollm2_path: Path) -> Callable[..., dict[str, Any]]:
    """Create a model from the real SmolLM2 GGUF with the repo's Modelfile layers; returns the request sent."""
    modelfile = parse_modelfile((REPO / "modelfiles" / "smollm2-135m.Modelfile").read_bytes())

    def create(name: str = "smollm2:135m", **extra: Any) -> dict[str, Any]:
        body = {
            "model": name,
            "files": {"model.gguf": upload(http, smollm2_path)},
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
