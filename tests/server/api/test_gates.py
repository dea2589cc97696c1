"""API keys over real HTTP: both dialects' 401s, the official clients and the corral CLI with a key, a keys file
rotated under a running server, and the paths that stay open."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from server.auth import key_id
from server.cli import main
from tests.server.conftest import LiveServer, seed_store

pytestmark = pytest.mark.slow

MODEL = "smollm2:135m"
KEY = "corral-test-key-1"


@pytest.fixture
def keyed(start_server: Callable[..., LiveServer], tmp_path: Path, smollm2_path: Path) -> LiveServer:
    seed_store(tmp_path / "models", smollm2_path)
    return start_server(tmp_path / "models", variables={"CORRAL_API_KEYS": f"{KEY},another-key"})


def test_missing_and_wrong_keys_get_401_in_each_dialect(keyed: LiveServer) -> None:
    with httpx.Client(base_url=keyed.url, timeout=60) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            native = client.post("/api/chat", json={"model": MODEL}, headers=headers)
            assert native.status_code == 401
            assert native.headers["www-authenticate"] == "Bearer"
            assert set(native.json()) == {"error"} and KEY not in native.text
            oai = client.post("/v1/chat/completions", json={"model": MODEL}, headers=headers)
            assert oai.status_code == 401 and oai.headers["www-authenticate"] == "Bearer"
            error = oai.json()["error"]
            assert error["type"] == "invalid_request_error" and error["message"]
        good = client.get("/api/tags", headers={"Authorization": f"Bearer {KEY}"})
        assert good.status_code == 200 and [m["name"] for m in good.json()["models"]] == [MODEL]
        # Open without a key: liveness, readiness, the root answer, and metrics (by default).
        for path in ["/", "/healthz", "/readyz", "/metrics"]:
            assert client.get(path).status_code == 200, path
        metrics = client.get("/metrics").text
    assert 'corral_rejected_requests_total{reason="unauthorized"} 6.0' in metrics
    assert f'corral_key_requests_total{{key_id="{key_id(KEY)}"}} 1.0' in metrics and KEY not in metrics


def test_official_clients_work_with_a_key(keyed: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    options = {"temperature": 0, "num_predict": 4}
    hi = [{"role": "user", "content": "Hi"}]
    with ollama.Client(host=keyed.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        assert client.chat(model=MODEL, messages=hi, options=options).message.content
    with ollama.Client(host=keyed.url) as client, pytest.raises(ollama.ResponseError) as caught:
        client.chat(model=MODEL, messages=hi)
    assert caught.value.status_code == 401
    monkeypatch.setenv("OLLAMA_API_KEY", KEY)  # the ollama client sends this key by itself
    with ollama.Client(host=keyed.url) as client:
        assert client.generate(model=MODEL, prompt="Hi", options=options).response

    with openai.OpenAI(base_url=f"{keyed.url}/v1", api_key=KEY, max_retries=0) as oai:
        completion = oai.chat.completions.create(model=MODEL, messages=hi, max_tokens=4, temperature=0)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    with (
        openai.OpenAI(base_url=f"{keyed.url}/v1", api_key="wrong", max_retries=0) as oai,
        pytest.raises(openai.AuthenticationError),
    ):
        oai.models.list()


def test_cli_sends_ollama_api_key(keyed: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", keyed.url)
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    assert main(["list"], out=io.StringIO()) == 1  # no key: refused, and the error says what to set
    monkeypatch.setenv("OLLAMA_API_KEY", KEY)
    out = io.StringIO()
    assert main(["list"], out=out) == 0
    assert MODEL in out.getvalue()


def test_rotated_keys_file_applies_without_restart(start_server: Callable[..., LiveServer], tmp_path: Path) -> None:
    keys = tmp_path / "secret" / "keys"
    keys.parent.mkdir()
    keys.write_text("first-key\n")
    server = start_server(variables={"CORRAL_API_KEYS_FILE": str(keys), "CORRAL_METRICS_AUTH": "1"})
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/api/tags", headers={"Authorization": "Bearer first-key"}).status_code == 200
        assert client.get("/metrics").status_code == 401  # CORRAL_METRICS_AUTH closes /metrics too
        rotated = keys.with_name("keys.next")
        rotated.write_text("second-key\n")
        os.replace(rotated, keys)
        assert client.get("/api/tags", headers={"Authorization": "Bearer first-key"}).status_code == 401
        assert client.get("/api/tags", headers={"Authorization": "Bearer second-key"}).status_code == 200
        assert client.get("/metrics", headers={"Authorization": "Bearer second-key"}).status_code == 200


def test_request_id_is_echoed_or_made(keyed: LiveServer) -> None:
    with httpx.Client(base_url=keyed.url, timeout=60) as client:
        assert client.get("/", headers={"X-Request-ID": "trace-42"}).headers["x-request-id"] == "trace-42"
        made = client.get("/").headers["x-request-id"]
        assert len(made) == 32 and made != client.get("/").headers["x-request-id"]
        assert client.get("/", headers={"X-Request-ID": "x" * 500}).headers["x-request-id"] != "x" * 500
    assert key_id(KEY) != KEY


def test_request_bodies_over_the_limit_get_413_but_blob_uploads_stream(
    start_server: Callable[..., LiveServer],
) -> None:
    server = start_server(variables={"CORRAL_MAX_REQUEST_BYTES": "2048"})
    big = {"model": MODEL, "prompt": "x" * 4096}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        native = client.post("/api/generate", json=big)
        assert native.status_code == 413
        assert native.json() == {"error": "request body too large: the limit is 2048 bytes (CORRAL_MAX_REQUEST_BYTES)"}
        oai = client.post("/v1/completions", json=big)
        assert oai.status_code == 413 and "CORRAL_MAX_REQUEST_BYTES" in oai.json()["error"]["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"model": "smollm2:135m", "prompt": "'
            for _ in range(8):
                yield b"y" * 1024
            yield b'"}'

        chunked = client.post("/api/generate", content=chunks())
        assert chunked.status_code == 413 and "too large" in chunked.json()["error"]
        blob = os.urandom(64 * 1024)
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        assert client.post(f"/api/blobs/{digest}", content=blob).status_code == 201
        assert client.post("/api/show", json={"model": "absent"}).status_code == 404  # small bodies pass
