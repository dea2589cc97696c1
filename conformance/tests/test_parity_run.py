"""The parity run's parts that need no Ollama build: staging the catalog model for ``ollama create``, the
suite command per server and the usage errors; plus a round trip through a cached Ollama when one is built."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import httpx
import pytest

from conformance.harness import ServerStartError
from conformance.parity import run
from conformance.parity.ollama import OllamaServer, stage_modelfile

CACHED = Path(os.environ.get("CORRAL_TOOLS_CACHE", Path.home() / ".cache/corral/tools")) / "ollama-0.24.0"


def test_stage_modelfile_links_the_package_weights(tmp_path: Path) -> None:
    modelfile = stage_modelfile("smollm2:135m", tmp_path)
    assert modelfile.read_text().startswith("# SmolLM2")
    weights = tmp_path / "weights" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert weights.is_symlink()
    assert weights.read_bytes()[:4] == b"GGUF"


def test_stage_modelfile_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match="no entry named 'absent:1b'"):
        stage_modelfile("absent:1b", tmp_path)


def test_suite_command_per_server(tmp_path: Path) -> None:
    args = argparse.Namespace(model="smollm2:135m", out=tmp_path, only=["models"], keyword=None)
    ollama = run.suite_command(args, "ollama-0.24.0", "http://127.0.0.1:1")
    assert ollama[ollama.index("--url") + 1] == "http://127.0.0.1:1"
    assert str(tmp_path / "ollama-0.24.0.json") in ollama
    corral = run.suite_command(args, "corral", None)
    assert "--url" not in corral
    assert corral[-2:] == ["--only", "models"]


@pytest.mark.parametrize("version", ["latest", "next"])
def test_version_must_be_a_release(version: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--ollama-version", version]) == run.EXIT_USAGE
    assert "--ollama-version" in capsys.readouterr().err


def test_missing_binary_is_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run.main(["--ollama-bin", str(tmp_path / "no-ollama"), "--out", str(tmp_path / "out")])
    assert code == run.EXIT_NO_SERVER
    assert "no-ollama" in capsys.readouterr().err


@pytest.mark.skipif(not (CACHED / ".complete").exists(), reason=f"no Ollama built at {CACHED}; run make parity")
def test_cached_ollama_serves_the_catalog_model() -> None:
    with OllamaServer(CACHED / "bin" / "ollama", "smollm2:135m") as server:
        assert httpx.get(server.url + "/api/version").json() == {"version": "0.24.0"}
        names = [m["name"] for m in httpx.get(server.url + "/api/tags").json()["models"]]
        assert names == ["smollm2:135m"]
    assert not server.alive()
