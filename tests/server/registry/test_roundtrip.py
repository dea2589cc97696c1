"""Push, remove, pull back, through Corral's API against a real registry: the store comes back byte for
byte, the model answers the same, and the manifest in the registry is the JSON Ollama pushes."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from server.registry.local import LocalRegistry
from server.store.store import Store
from tests.server.conftest import LiveServer

from .conftest import store_files

pytestmark = pytest.mark.slow

GENERATE = {
    "prompt": "Name three colours.",
    "stream": False,
    "options": {"temperature": 0, "seed": 7, "num_predict": 24},
}


def _stream(http: httpx.Client, route: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", route, json=body, timeout=300) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.iter_lines() if line]


def _statuses(lines: list[dict[str, Any]]) -> list[str]:
    """The status sequence with repeated layer lines collapsed."""
    out: list[str] = []
    for line in lines:
        assert "error" not in line, line
        if not out or out[-1] != line["status"]:
            out.append(line["status"])
    return out


def _show(http: httpx.Client, model: str) -> dict[str, Any]:
    shown = http.post("/api/show", json={"model": model}).json()
    shown.pop("modified_at")
    return dict(shown)


def test_push_remove_pull_gives_the_same_store_and_answers(
    open_registry: LocalRegistry, repo_name: str, seeded: Callable[..., Store], start_server
) -> None:
    model = f"{open_registry.host}/{repo_name}:135m"
    store = seeded(model)
    server: LiveServer = start_server(store.root)
    with server.client() as http:
        before = store_files(store.root)
        shown = _show(http, model)
        answer = http.post("/api/generate", json={"model": model, **GENERATE}).json()["response"]
        assert answer

        pushed = _stream(http, "/api/push", {"model": model, "insecure": True})
        layers = [f"pushing {d[7:19]}" for d in _digests(store, model)]
        assert _statuses(pushed) == ["retrieving manifest", *layers, "pushing manifest", "success"]

        assert http.request("DELETE", "/api/delete", json={"model": model}).status_code == 200
        assert store_files(store.root) == {}

        pulled = _stream(http, "/api/pull", {"model": model, "insecure": True})
        layers = [f"pulling {d[7:19]}" for d in _digests(store, model)]
        assert _statuses(pulled) == [
            "pulling manifest",
            *layers,
            "verifying sha256 digest",
            "writing manifest",
            "success",
        ]
        model_line = next(line for line in pulled if line.get("digest") and line.get("total", 0) > 50_000_000)
        assert model_line["status"] == f"pulling {model_line['digest'][7:19]}"

        after = store_files(store.root)
        manifest_path = next(path for path in before if path.startswith("manifests/"))
        blobs = {path: digest for path, digest in before.items() if path.startswith("blobs/")}
        assert {path: digest for path, digest in after.items() if path.startswith("blobs/")} == blobs
        # The registry holds the manifest Ollama's push sends (json.Marshal: no trailing newline); the pull
        # stores it as served, so the manifest file differs from the created one by exactly that newline.
        local = (store.root / manifest_path).read_bytes()
        assert set(after) == set(before)
        assert local == _registry_manifest(open_registry, repo_name)
        assert hashlib.sha256(local + b"\n").hexdigest() == before[manifest_path]

        assert _show(http, model) == shown
        again = http.post("/api/generate", json={"model": model, **GENERATE}).json()["response"]
        assert again == answer

        # A second round trip of the pulled model is byte-identical, manifest included.
        pushed = _stream(http, "/api/push", {"model": model, "insecure": True})
        assert all(line["completed"] == line["total"] for line in pushed if line.get("digest"))
        http.request("DELETE", "/api/delete", json={"model": model})
        _stream(http, "/api/pull", {"model": model, "insecure": True})
        assert store_files(store.root) == after


def test_a_pulled_store_is_served_unchanged(
    open_registry: LocalRegistry, repo_name: str, seeded: Callable[..., Store], start_server, tmp_path
) -> None:
    model = f"{open_registry.host}/{repo_name}:135m"
    source = seeded(model)
    with start_server(source.root).client() as http:
        _stream(http, "/api/push", {"model": model, "insecure": True})
    target = tmp_path / "pulled"
    with start_server(target).client() as http:
        done = http.post("/api/pull", json={"model": model, "insecure": True, "stream": False})
        assert done.status_code == 200 and done.json() == {"status": "success"}
    manifest = _registry_manifest(open_registry, repo_name)
    # A fresh server on the pulled store lists it under the registry's digest and generates.
    with start_server(target).client() as http:
        listed = http.get("/api/tags").json()["models"]
        assert [(m["name"], m["digest"]) for m in listed] == [(model, hashlib.sha256(manifest).hexdigest())]
        reply = http.post("/api/generate", json={"model": model, **GENERATE})
        assert reply.status_code == 200 and reply.json()["response"]


def test_pushed_manifest_is_the_json_ollama_pushes(
    open_registry: LocalRegistry, repo_name: str, seeded: Callable[..., Store], start_server
) -> None:
    model = f"{open_registry.host}/{repo_name}:135m"
    store = seeded(model)
    with start_server(store.root).client() as http:
        done = http.post("/api/push", json={"model": model, "insecure": True, "stream": False})
        assert done.json() == {"status": "success"}
    served = httpx.get(
        f"{open_registry.url}/v2/{repo_name}/manifests/135m",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    stored = json.loads(next(store.root.glob("manifests/*/*/*/*")).read_bytes())
    # Go's json.Marshal of Ollama's Manifest struct: fields in declaration order, compact, no newline.
    ollama = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": _layer(stored["config"]),
        "layers": [_layer(layer) for layer in stored["layers"]],
    }
    expected = json.dumps(ollama, separators=(",", ":")).encode()
    assert served.content == expected
    assert served.headers["Docker-Content-Digest"] == "sha256:" + hashlib.sha256(expected).hexdigest()
    assert served.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v2+json"


def test_pull_errors_have_ollamas_texts(open_registry: LocalRegistry, start_server) -> None:
    with start_server().client() as http:
        missing = f"{open_registry.host}/library/absent:1"
        lines = [
            json.loads(line) for line in http.post("/api/pull", json={"model": missing, "insecure": True}).iter_lines()
        ]
        assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
        refused = http.post("/api/pull", json={"model": missing, "insecure": True, "stream": False})
        assert refused.status_code == 500
        assert refused.json() == {"error": "pull model manifest: file does not exist"}
        insecure = http.post("/api/pull", json={"model": f"http://{missing}", "stream": False})
        assert (insecure.status_code, insecure.json()) == (500, {"error": "insecure protocol http"})
        lines = [
            json.loads(line) for line in http.post("/api/push", json={"model": missing, "insecure": True}).iter_lines()
        ]
        assert lines[:2] == [{"status": "retrieving manifest"}, {"status": "couldn't retrieve manifest"}]
        assert lines[2] == {"error": f"model '{missing}' not found"}


def _layer(raw: dict[str, Any]) -> dict[str, Any]:
    out = {"mediaType": raw["mediaType"], "digest": raw["digest"], "size": raw["size"]}
    for key in ("from", "name"):
        if raw.get(key):
            out[key] = raw[key]
    return out


def _digests(store: Store, model: str) -> list[str]:
    """Layer digests then the config's, the order pull and push report them."""
    raw = json.loads(next(store.root.glob("manifests/*/*/*/*")).read_bytes())
    return [layer["digest"] for layer in raw["layers"]] + [raw["config"]["digest"]]


def _registry_manifest(registry: LocalRegistry, repository: str) -> bytes:
    return httpx.get(
        f"{registry.url}/v2/{repository}/manifests/135m",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    ).content


def test_a_client_that_goes_away_cancels_the_pull_and_keeps_the_partial_file(
    open_registry: LocalRegistry, repo_name: str, seeded: Callable[..., Store], start_server, proxy_to, tmp_path
) -> None:
    model = f"{open_registry.host}/{repo_name}:135m"
    source = seeded(model)
    with start_server(source.root).client() as http:
        assert http.post("/api/push", json={"model": model, "insecure": True, "stream": False}).status_code == 200
    proxy = proxy_to(open_registry)
    proxy.rate = 2e6
    via = f"{proxy.host}/{repo_name}:135m"
    target = tmp_path / "target"
    with start_server(target).client() as http:
        with http.stream("POST", "/api/pull", json={"model": via, "insecure": True}) as response:
            for line in response.iter_lines():
                if json.loads(line).get("completed", 0) > 4_000_000:
                    break
        # The server notices the closed connection and stops the transfer: the proxy goes quiet.
        deadline = time.monotonic() + 60
        while True:
            before = proxy.relayed
            time.sleep(1.5)
            if proxy.relayed == before:
                break
            assert time.monotonic() < deadline, "the pull kept downloading after its client left"
        assert not [path for path in target.rglob("manifests/**/*") if path.is_file()]
        assert list((target / "blobs").glob("*-partial"))
        proxy.rate = None
        done = http.post("/api/pull", json={"model": via, "insecure": True, "stream": False})
        assert done.json() == {"status": "success"}
