"""Sizing from the catalog: the facts read from the GGUF headers, the volume formula, the context rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.program import REPO_ROOT
from infra.sizing import SizingError, effective_num_ctx, read_catalog, volume_bytes
from server.memory import ModelShape

CATALOG = REPO_ROOT / "modelfiles" / "catalog.yaml"


def test_facts_come_from_the_gguf_headers() -> None:
    bundle = read_catalog(CATALOG)
    smollm = next(m for m in bundle.models if m.name == "smollm2:135m")
    assert smollm.shape == ModelShape(n_layer=30, n_embd=576, n_head=9, n_head_kv=3)
    assert smollm.n_ctx_train == 8192
    weights = (CATALOG.parent / "weights" / "SmolLM2-135M-Instruct.Q4_1.gguf").resolve()
    assert smollm.weights_bytes == weights.stat().st_size
    assert smollm.weights_bytes < smollm.blob_bytes < smollm.weights_bytes + 64 * 1024
    assert set(bundle.files) == {
        "catalog.yaml",
        "smollm2-135m.Modelfile",
        "gemma3-270m.Modelfile",
        "all-minilm-22m.Modelfile",
    }


def test_a_safetensors_directory_is_sized_as_its_conversion() -> None:
    """all-minilm comes from a safetensors directory: its shape from config.json, its weights as the F16 GGUF
    create writes (46.2 MB, of which the vocabulary header is about 0.5 MB), and the store keeps the upload too."""
    minilm = next(m for m in read_catalog(CATALOG).models if m.name == "all-minilm:22m")
    assert minilm.shape == ModelShape(n_layer=6, n_embd=384, n_head=12, n_head_kv=12)
    assert minilm.n_ctx_train == 512
    assert 45_000_000 < minilm.weights_bytes < 46_220_384
    uploaded = (CATALOG.parent / "weights" / "all-minilm-l6-v2" / "model.safetensors").resolve().stat().st_size
    assert minilm.blob_bytes > minilm.weights_bytes + uploaded


def test_volume_is_blobs_times_headroom_plus_the_largest() -> None:
    bundle = read_catalog(CATALOG)
    size = volume_bytes(bundle, 1.2)
    exact = bundle.total_blob_bytes * 1.2 + bundle.largest_blob_bytes
    assert exact <= size < exact + 2**20
    assert size % 2**20 == 0
    assert volume_bytes(bundle, 2.0) > size


@pytest.mark.parametrize(
    ("num_ctx", "context_length", "expected"),
    [(None, 0, 2048), (None, 4096, 4096), (1024, 4096, 1024), (None, 100_000, 8192)],
)
def test_context_follows_the_server_rules(num_ctx: int | None, context_length: int, expected: int) -> None:
    model = next(m for m in read_catalog(CATALOG).models if m.name == "smollm2:135m")
    model = type(model)(**{**model.__dict__, "num_ctx": num_ctx})
    assert effective_num_ctx(model, context_length) == expected


def _copy_catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    shutil.copytree(CATALOG.parent, folder, ignore=shutil.ignore_patterns("weights"))
    (folder / "weights").symlink_to(CATALOG.parent / "weights")
    return folder


def test_a_from_that_is_no_file_is_reported(tmp_path: Path) -> None:
    folder = _copy_catalog(tmp_path)
    (folder / "catalog.yaml").write_text("models:\n  - name: broken:1b\n    source: broken.Modelfile\n")
    (folder / "broken.Modelfile").write_text("FROM ./weights/missing.gguf\n")
    with pytest.raises(SizingError, match=r"broken.Modelfile: FROM ./weights/missing.gguf is neither a file"):
        read_catalog(folder / "catalog.yaml")


def test_modelfiles_must_sit_next_to_the_catalog(tmp_path: Path) -> None:
    folder = _copy_catalog(tmp_path)
    (folder / "sub").mkdir()
    shutil.copy(folder / "smollm2-135m.Modelfile", folder / "sub" / "x.Modelfile")
    (folder / "sub" / "weights").symlink_to(CATALOG.parent / "weights")
    (folder / "catalog.yaml").write_text("models:\n  - name: x:1\n    source: sub/x.Modelfile\n")
    with pytest.raises(SizingError, match="must sit next to the catalog"):
        read_catalog(folder / "catalog.yaml")


def test_a_registry_entry_cannot_be_sized_and_says_what_to_do(tmp_path: Path) -> None:
    folder = _copy_catalog(tmp_path)
    entry = "  - name: mirrored:1b\n    from: registry.internal:5000/library/x:1b\n"
    (folder / "catalog.yaml").write_text("models:\n" + entry)
    with pytest.raises(SizingError, match=r"comes from a registry .* give the entry a Modelfile"):
        read_catalog(folder / "catalog.yaml")
