"""The whole path a user takes, through the `corral` CLI and a real server: ``corral create -q`` from a
safetensors directory (``FROM ./dir``), ``ADAPTER`` lines (one per create, stacked by building on a model that
has one), the adapter layers in the manifest with Ollama's media type, ``show --modelfile`` printing them back,
and generation through the server changing with the adapter."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import httpx
import pytest

from server.cli import main
from server.store.names import ModelName
from server.store.store import Store
from tests.server.engine.lora import write_random_lora

ADAPTER_MEDIA_TYPE = "application/vnd.ollama.image.adapter"
PROMPT = "What is the capital of France?"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def cli_server(server, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    return server


def generate(url: str, model: str) -> str:
    body = {"model": model, "prompt": PROMPT, "stream": False, "options": {"temperature": 0, "num_predict": 12}}
    response = httpx.post(f"{url}/api/generate", json=body, timeout=300)
    assert response.status_code == 200, response.text
    return str(response.json()["response"])


@pytest.mark.slow
def test_create_from_a_safetensors_directory_with_quantize(
    cli_server, tmp_path: Path, smollm2_export, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "SmolLM2").symlink_to(smollm2_export.safetensors)
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text("FROM ./SmolLM2\n")
    assert run("create", "smol-q8", "-f", str(modelfile), "-q", "q8_0")[0] == 0
    progress = capsys.readouterr().err
    for line in ("copying file model.safetensors 100%", "converting model", "quantizing F16 model to Q8_0"):
        assert line in progress, progress
    assert progress.rstrip().endswith("success")
    code, listing = run("list")
    assert code == 0
    assert listing.splitlines()[1].split()[4] == "Q8_0"
    assert "Paris" in generate(cli_server.url, "smol-q8")


@pytest.mark.slow
def test_adapters_are_stored_shown_and_applied(
    cli_server, tmp_path: Path, smollm2_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "smol.gguf").symlink_to(smollm2_path)
    write_random_lora(smollm2_path, tmp_path / "first.gguf", seed=1)
    write_random_lora(smollm2_path, tmp_path / "second.gguf", tensors=("blk.2.attn_k.weight",), seed=2)
    (tmp_path / "Base").write_text("FROM ./smol.gguf\n")
    (tmp_path / "One").write_text("FROM ./smol.gguf\nADAPTER ./first.gguf\n")
    (tmp_path / "Two").write_text("FROM one\nADAPTER ./second.gguf\n")
    (tmp_path / "Both").write_text("FROM ./smol.gguf\nADAPTER ./first.gguf\nADAPTER ./second.gguf\n")
    for name in ("base", "one", "two"):
        assert run("create", name, "-f", str(tmp_path / name.capitalize()))[0] == 0
    capsys.readouterr()
    assert run("create", "both", "-f", str(tmp_path / "Both"))[0] == 1  # Ollama: one adapter per create
    assert "only one adapter is currently supported" in capsys.readouterr().err

    store = Store(cli_server.settings.models)
    stored = store.get(ModelName.parse("two"))
    assert stored is not None
    adapters = [layer for layer in stored.manifest.layers if layer.media_type == ADAPTER_MEDIA_TYPE]
    assert len(adapters) == 2
    code, text = run("show", "two", "--modelfile")
    assert code == 0
    shown = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("ADAPTER ")]
    assert shown == [str(store.blobs.path(layer.digest)) for layer in adapters]

    base, one, two = (generate(cli_server.url, name) for name in ("base", "one", "two"))
    assert one != base
    assert two not in (base, one)


def test_http_create_refuses_an_unsupported_architecture_with_ollamas_text(server, tmp_path: Path) -> None:
    files = {
        "config.json": json.dumps({"architectures": ["GPT2LMHeadModel"]}).encode(),
        "model.safetensors": b"\x02\x00\x00\x00\x00\x00\x00\x00{}",
    }
    with server.client() as http:
        digests = {}
        for name, data in files.items():
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            assert http.post(f"/api/blobs/{digest}", content=data).status_code in (200, 201)
            digests[name] = digest
        before = sorted(p.name for p in (Path(server.settings.models) / "blobs").iterdir())
        response = http.post("/api/create", json={"model": "gpt2", "files": digests})
        assert (response.status_code, response.json()) == (400, {"error": 'unsupported architecture "GPT2LMHeadModel"'})
        assert sorted(p.name for p in (Path(server.settings.models) / "blobs").iterdir()) == before
        assert http.post("/api/show", json={"model": "gpt2"}).status_code == 404
