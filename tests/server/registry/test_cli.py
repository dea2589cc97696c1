"""``corral pull`` and ``corral push`` through a real server and registry: Ollama's status lines and a bar
per layer; errors as one line on stderr."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from server.cli import main
from server.cli.display import human_bytes
from server.registry.local import LocalRegistry
from server.store.store import Store

pytestmark = pytest.mark.slow


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_push_rm_pull_show_progress(
    open_registry: LocalRegistry,
    repo_name: str,
    seeded: Callable[..., Store],
    start_server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = f"{open_registry.host}/{repo_name}:135m"
    store = seeded(model)
    stored = store.get(store.all()[0].name)
    assert stored is not None
    weights = next(layer for layer in stored.manifest.layers if layer.size > 50_000_000)
    server = start_server(store.root)
    monkeypatch.setenv("OLLAMA_HOST", server.url)

    assert _run("push", model, "--insecure")[0] == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "retrieving manifest" and err[-2:] == ["pushing manifest", "success"]
    assert f"pushing {weights.digest.short}: 100% ▕{'█' * 20}▏ {human_bytes(weights.size)}" in err

    assert _run("rm", model)[0] == 0
    assert _run("pull", model, "--insecure")[0] == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "pulling manifest" and err[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    bars = [line for line in err if line.startswith(f"pulling {weights.digest.short}: ")]
    assert bars[-1].startswith(f"pulling {weights.digest.short}: 100% ▕")

    code, _ = _run("pull", f"{open_registry.host}/library/absent:1", "--insecure")
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == "Error: pull model manifest: file does not exist"
