"""Catalog models from a registry: validation of ``from``, apply pulls what is missing (and only that), digest
pins, and ``corral catalog push`` feeding a registry that another catalog then pulls from."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from server.catalog import CatalogError, apply_catalog, load_catalog
from server.cli import main
from server.registry.local import LocalRegistry
from server.store.names import ModelName
from server.store.store import Store
from tests.server.test_catalog import SMOL_ENTRY, write_catalog

from .conftest import options, store_files

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  - name: a\n    from: 'bad name!'\n", "field 'from' must be a registry model name"),
        ("  - name: a\n    from: r:5000/x/y:1\n    source: smol.Modelfile\n", "either 'source'"),
        (
            "  - name: a\n    from: r:5000/x/y:1\n    options:\n      num_ctx: 4096\n",
            "field 'options' does not apply to a 'from' model",
        ),
        (
            "  - name: a\n    from: r:5000/x/y:1\n    weights: {package: p, file: f}\n",
            "field 'weights' does not apply",
        ),
    ],
    ids=["bad-from", "source-and-from", "parameters", "weights"],
)
def test_from_entry_validation(tmp_path: Path, entry: str, message: str) -> None:
    path = write_catalog(tmp_path, "version: 1\nmodels:\n" + entry)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_from_entry_takes_num_parallel(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, "models:\n  - name: a\n    from: r:5000/x/y:1\n    options: {num_parallel: 2}\n")
    (entry,) = load_catalog(path).entries
    assert entry.registry == ModelName.parse("r:5000/x/y:1") and entry.source is None and entry.num_parallel == 2


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_catalog_push_then_a_from_catalog_pulls_it(
    fresh_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_name: str
) -> None:
    source_dir = tmp_path / "source"
    source_dir.mkdir()
    catalog = write_catalog(source_dir, "version: 1\nmodels:" + SMOL_ENTRY)
    source_store = tmp_path / "source-models"
    monkeypatch.setenv("OLLAMA_MODELS", str(source_store))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    namespace = repo_name.split("/")[0]
    code, out = _cli("catalog", "push", f"{fresh_registry.host}/{namespace}", str(catalog), "--insecure")
    assert code == 0, out
    pushed_name = f"{fresh_registry.host}/{namespace}/smol:135m"
    (row,) = [line.split() for line in out.splitlines()[1:]]
    assert row[0] == pushed_name
    digest = row[1]

    mirror_dir = tmp_path / "mirror"
    mirror_dir.mkdir()
    from_catalog = write_catalog(
        mirror_dir,
        f"models:\n  - name: smol:135m\n    from: http://{pushed_name}\n    digest: {digest}\n    preload: true\n",
    )
    target = Store(tmp_path / "target-models")
    statuses: list[str] = []
    (applied,) = apply_catalog(load_catalog(from_catalog), target, statuses.append, options())
    assert (applied.name, applied.digest, applied.action) == ("smol:135m", digest, "created")
    assert any("pulling" in s and s.endswith("100%") for s in statuses)
    stored = target.get(ModelName.parse("smol:135m"))
    assert stored is not None and stored.digest == digest
    source_blobs = {k: v for k, v in store_files(source_store).items() if k.startswith("blobs/")}
    assert {k: v for k, v in store_files(target.root).items() if k.startswith("blobs/")} == source_blobs

    # Applying again changes nothing and does not need the registry at all.
    before = store_files(target.root)
    fresh_registry.stop()
    (again,) = apply_catalog(load_catalog(from_catalog), target, statuses.append, options())
    assert again.action == "unchanged" and store_files(target.root) == before


def test_a_pin_the_registry_does_not_serve_fails_before_any_download(
    open_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_name: str
) -> None:
    source_dir = tmp_path / "source"
    source_dir.mkdir()
    catalog = write_catalog(source_dir, "version: 1\nmodels:" + SMOL_ENTRY)
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "source-models"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    namespace = repo_name.split("/")[0] + "pin"
    assert _cli("catalog", "push", f"{open_registry.host}/{namespace}", str(catalog), "--insecure")[0] == 0
    wrong = "0" * 64
    from_catalog = write_catalog(
        tmp_path,
        f"models:\n  - name: smol:135m\n    from: http://{open_registry.host}/{namespace}/smol:135m\n"
        f"    digest: '{wrong}'\n",
    )
    target = Store(tmp_path / "target-models")
    with pytest.raises(CatalogError, match="was pinned") as caught:
        apply_catalog(load_catalog(from_catalog), target, lambda _: None, options())
    assert wrong in str(caught.value)
    assert store_files(target.root) == {}
