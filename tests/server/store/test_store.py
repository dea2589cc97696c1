"""The store against a store built by hand exactly as Ollama writes it: list, content, case-insensitive
resolution, copy, delete with blob pruning, manifest bytes, start-up prune."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.store.blobs import Digest
from server.store.manifest import CONFIG_MEDIA_TYPE, Layer, Manifest, MediaType, ModelConfig
from server.store.names import ModelName
from server.store.store import Store

Tree = dict[str, bytes | None]
HOUR = 3600.0


@pytest.fixture
def store(ollama_store: Any) -> Store:
    return Store(ollama_store.root)


def stored(store: Store, text: str) -> Any:
    found = store.get(ModelName.parse(text))
    assert found is not None, text
    return found


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_lists_every_ollama_model(store: Store, ollama_store: Any) -> None:
    listed = {s.name.display: s for s in store.all()}
    assert set(listed) == {"tiny:latest", "user/ns:latest", "hf.co/u/r:Q4_K_M"}
    for display, model in ollama_store.models.items():
        entry = listed[display]
        assert entry.digest == hashlib.sha256(model.manifest).hexdigest()
        assert entry.manifest.size == model.size  # layers + config
        assert entry.modified == model.path.stat().st_mtime
        assert entry.modified_at.tzinfo is not None


def test_list_of_an_empty_or_missing_store(tmp_path: Path) -> None:
    assert Store(tmp_path / "missing").all() == []
    (tmp_path / "empty" / "manifests").mkdir(parents=True)
    assert Store(tmp_path / "empty").all() == []


def test_list_skips_unreadable_and_misplaced_manifests(store: Store, ollama_store: Any) -> None:
    manifests = ollama_store.root / "manifests"
    (manifests / "registry.ollama.ai/library/broken").mkdir(parents=True)
    (manifests / "registry.ollama.ai/library/broken/latest").write_bytes(b"{not json")
    (manifests / "registry.ollama.ai/library/bad name").mkdir(parents=True)
    (manifests / "registry.ollama.ai/library/bad name/latest").write_bytes(ollama_store.models["tiny:latest"].manifest)
    (manifests / "registry.ollama.ai/library/tiny/.tmp-123").write_bytes(b"half")
    (manifests / "registry.ollama.ai/library/bad-digest").mkdir(parents=True)
    (manifests / "registry.ollama.ai/library/bad-digest/latest").write_bytes(
        ollama_store.models["tiny:latest"].manifest.replace(b"sha256:", b"sha256:zz", 1)
    )
    (manifests / "registry.ollama.ai/library/null-size").mkdir(parents=True)
    (manifests / "registry.ollama.ai/library/null-size/latest").write_bytes(
        b'{"schemaVersion":2,"config":{"digest":"sha256:' + b"a" * 64 + b'","size":null},"layers":[]}\n'
    )
    (manifests / "stray-file").write_bytes(b"x")
    assert {s.name.display for s in store.all()} == {"tiny:latest", "user/ns:latest", "hf.co/u/r:Q4_K_M"}


def test_reads_content(store: Store, ollama_store: Any) -> None:
    content = store.content(stored(store, "tiny"))
    assert content.template == ollama_store.template
    assert content.system == ollama_store.system
    assert content.parameters == {"stop": ["<|user|>"], "temperature": 0.6}
    assert content.licenses == [ollama_store.license]
    assert content.messages == []
    assert content.model_path is not None and content.model_path.read_bytes() == ollama_store.gguf
    assert content.parent_model == ""
    assert content.adapter_paths == [] and content.projector_paths == []
    config = content.config
    assert (config.model_format, config.model_family, config.model_families) == ("gguf", "llama", ("llama",))
    assert (config.model_type, config.file_type) == ("1.2K", "F32")
    assert set(config.extra) == {"architecture", "os", "rootfs"}


def test_content_of_a_model_with_only_weights(store: Store) -> None:
    content = store.content(stored(store, "hf.co/u/r:Q4_K_M"))
    assert (content.template, content.system, content.parameters, content.licenses) == ("", "", {}, [])


def test_content_survives_missing_blobs(store: Store, ollama_store: Any) -> None:
    tiny = stored(store, "tiny")
    for layer in tiny.manifest.layers:
        if layer.media_type != MediaType.MODEL:
            ollama_store.blob(layer.digest.hex).unlink()
    ollama_store.blob(tiny.manifest.config.digest.hex).unlink()
    content = store.content(tiny)
    assert (content.template, content.system, content.parameters, content.licenses) == ("", "", {}, [""])
    assert content.config == ModelConfig()


def test_legacy_prompt_layer_is_the_template(store: Store, ollama_store: Any) -> None:
    tiny = stored(store, "tiny")
    layers = tuple(
        Layer(MediaType.PROMPT, layer.digest, layer.size) if layer.media_type == MediaType.TEMPLATE else layer
        for layer in tiny.manifest.layers
    )
    store.write_manifest(ModelName.parse("legacy"), Manifest(config=tiny.manifest.config, layers=layers))
    assert store.content(stored(store, "legacy")).template == ollama_store.template


@pytest.mark.parametrize(
    ("query", "display"),
    [
        ("tiny", "tiny:latest"),
        ("TINY:LATEST", "tiny:latest"),
        ("Registry.Ollama.AI/Library/Tiny", "tiny:latest"),
        ("USER/NS", "user/ns:latest"),
        ("HF.CO/U/R:q4_k_m", "hf.co/u/r:Q4_K_M"),
    ],
)
def test_resolves_case_insensitively_to_the_stored_spelling(store: Store, query: str, display: str) -> None:
    name = store.resolve(ModelName.parse(query))
    assert name is not None and name.display == display
    assert stored(store, query).name.display == display


@pytest.mark.parametrize("query", ["tiny:other", "other", "user/tiny", "hf.co/u/r", "library/ns"])
def test_missing_names_resolve_to_none(store: Store, query: str) -> None:
    assert store.resolve(ModelName.parse(query)) is None
    assert store.get(ModelName.parse(query)) is None


def test_copy_writes_identical_bytes(store: Store, ollama_store: Any, tree: Callable[[Path], Tree]) -> None:
    before = tree(ollama_store.root / "blobs")
    store.copy(stored(store, "TINY"), ModelName.parse("other/copy:v1"))
    copied = ollama_store.root / "manifests/registry.ollama.ai/other/copy/v1"
    assert copied.read_bytes() == ollama_store.models["tiny:latest"].manifest
    assert stored(store, "other/copy:v1").digest == stored(store, "tiny").digest
    assert tree(ollama_store.root / "blobs") == before


def test_copy_onto_an_existing_name_keeps_its_spelling(store: Store, ollama_store: Any) -> None:
    store.copy(stored(store, "hf.co/u/r:Q4_K_M"), ModelName.parse("TINY"))
    assert not (ollama_store.root / "manifests/registry.ollama.ai/library/TINY").exists()
    path = ollama_store.root / "manifests/registry.ollama.ai/library/tiny/latest"
    assert path.read_bytes() == ollama_store.models["hf.co/u/r:Q4_K_M"].manifest
    assert [p.name for p in path.parent.iterdir()] == ["latest"]  # no temp file left


def _blob_names(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs").iterdir()}


def test_delete_keeps_shared_blobs_and_removes_unique_ones(store: Store, ollama_store: Any) -> None:
    tiny = ollama_store.models["tiny:latest"]
    user = ollama_store.models["user/ns:latest"]
    hf = ollama_store.models["hf.co/u/r:Q4_K_M"]
    removed = store.delete(stored(store, "Tiny"))
    unique = set(tiny.blobs) - set(user.blobs) - set(hf.blobs)
    assert {d.hex for d in removed} == unique
    assert len(unique) == 4  # system, params, license, config; the model and template are shared
    assert _blob_names(ollama_store.root) == {f"sha256-{h}" for h in set(user.blobs) | set(hf.blobs)}
    assert not (ollama_store.root / "manifests/registry.ollama.ai/library").exists()
    assert (ollama_store.root / "manifests/registry.ollama.ai/user/ns/latest").is_file()
    assert {s.name.display for s in store.all()} == {"user/ns:latest", "hf.co/u/r:Q4_K_M"}


def test_deleting_every_model_empties_the_store(store: Store, ollama_store: Any) -> None:
    for name in ("tiny", "user/ns", "hf.co/u/r:Q4_K_M"):
        store.delete(stored(store, name))
    assert _blob_names(ollama_store.root) == set()
    assert list((ollama_store.root / "manifests").iterdir()) == []


def test_delete_with_noprune_removes_only_the_manifest(ollama_store: Any, tree: Callable[[Path], Tree]) -> None:
    store = Store(ollama_store.root, noprune=True)
    blobs_before = tree(ollama_store.root / "blobs")
    assert store.delete(stored(store, "tiny")) == []
    assert tree(ollama_store.root / "blobs") == blobs_before
    assert not ollama_store.models["tiny:latest"].path.exists()


def test_manifest_written_by_corral_is_byte_identical(store: Store, ollama_store: Any, tmp_path: Path) -> None:
    for display, model in ollama_store.models.items():
        manifest = Manifest.decode(model.manifest)
        assert manifest.encode() == model.manifest
        copy = Store(tmp_path / display.replace("/", "_"))
        for hex_digest, data in model.blobs.items():
            assert copy.blobs.write_bytes(data).digest == Digest(hex_digest)
        digest = copy.write_manifest(ModelName.parse(display), manifest)
        assert digest == model.digest
        assert (copy.manifests / ModelName.parse(display).manifest_path).read_bytes() == model.manifest


def test_manifest_round_trip_keeps_from_and_name() -> None:
    data = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:'
        + b"a" * 64
        + b'","size":10},"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:'
        + b"b" * 64
        + b'","size":2019377376,"from":"/root/.ollama/models/blobs/sha256-x"},'
        b'{"mediaType":"application/vnd.ollama.image.tensor","digest":"sha256:'
        + b"c" * 64
        + b'","size":5,"name":"blk.0.weight"}]}\n'
    )
    manifest = Manifest.decode(data)
    assert manifest.layers[0].from_ == "/root/.ollama/models/blobs/sha256-x"
    assert manifest.layers[1].name == "blk.0.weight"
    assert manifest.size == 10 + 2019377376 + 5
    assert manifest.encode() == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"layers":{}}',
        b'{"config":{"digest":"nope"},"layers":[]}',
        b'{"config":null,"layers":[]}',
        b'{"config":{"digest":"sha256:' + b"a" * 64 + b'","size":null},"layers":[]}',
        b'{"config":{"digest":"sha256:' + b"a" * 64 + b'","size":"big"},"layers":[]}',
        b'{"config":{"digest":"sha256:' + b"a" * 64 + b'"},"layers":[{"digest":7}]}',
        b'{"config":{"digest":"sha256:' + b"a" * 64 + b'"},"layers":[],"schemaVersion":[2]}',
        b"\xff\xfe",
    ],
    ids=[
        "empty",
        "text",
        "list",
        "layers-object",
        "bad-digest",
        "null-config",
        "null-size",
        "string-size",
        "number-digest",
        "list-version",
        "binary",
    ],
)
def test_manifest_decode_rejects(data: bytes) -> None:
    with pytest.raises(ValueError):
        Manifest.decode(data)


def test_write_manifest_refuses_missing_blobs(store: Store, ollama_store: Any) -> None:
    missing = Layer(MediaType.SYSTEM, Digest("f" * 64), 3)
    config = Layer(CONFIG_MEDIA_TYPE, Digest(next(iter(ollama_store.models["tiny:latest"].blobs))), 1)
    with pytest.raises(FileNotFoundError, match="not in the store"):
        store.write_manifest(ModelName.parse("new"), Manifest(config=config, layers=(missing,)))
    assert store.get(ModelName.parse("new")) is None


def test_rewriting_an_identical_manifest_keeps_its_mtime(store: Store, ollama_store: Any) -> None:
    tiny = ollama_store.models["tiny:latest"]
    age(tiny.path, 100)
    mtime = tiny.path.stat().st_mtime
    digest = store.write_manifest(ModelName.parse("TINY"), Manifest.decode(tiny.manifest))
    assert digest == tiny.digest
    assert tiny.path.stat().st_mtime == mtime


def test_config_encode_is_ollamas_config_v2(go_encode: Callable[[object], bytes]) -> None:
    digests = [Digest("a" * 64), Digest("b" * 64)]
    config = ModelConfig(model_family="llama", model_families=("llama",), model_type="134.52M", file_type="Q4_1")
    assert config.encode(digests) == go_encode(
        {
            "model_format": "gguf",
            "model_family": "llama",
            "model_families": ["llama"],
            "model_type": "134.52M",
            "file_type": "Q4_1",
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{'a' * 64}", f"sha256:{'b' * 64}"]},
        }
    )
    assert ModelConfig.decode(config.encode(digests)) == config
    assert ModelConfig().encode([]).startswith(b'{"model_format":"gguf","model_family":"","model_families":null,')


def test_prune_removes_old_unreferenced_blobs_and_keeps_young_ones(store: Store, ollama_store: Any) -> None:
    blobs = ollama_store.root / "blobs"
    old = store.blobs.write_bytes(b"orphan from a failed create").digest
    young = store.blobs.write_bytes(b"just uploaded, create not here yet").digest
    age(blobs / old.filename, HOUR + 60)
    for hex_digest in ollama_store.models["tiny:latest"].blobs:
        age(ollama_store.blob(hex_digest), 10 * HOUR)  # referenced: old age does not matter
    removed = store.prune()
    assert removed == [blobs / old.filename]
    assert store.blobs.exists(young)
    for model in ollama_store.models.values():
        assert all(ollama_store.blob(h).exists() for h in model.blobs)


def test_prune_removes_stale_temp_files_and_empty_directories(store: Store, ollama_store: Any) -> None:
    blobs = ollama_store.root / "blobs"
    manifests = ollama_store.root / "manifests"
    (blobs / ".tmp-crashed").write_bytes(b"half a blob")
    (manifests / "registry.ollama.ai/library/tiny/.tmp-crashed").write_bytes(b"half a manifest")
    (manifests / "registry.ollama.ai/empty/dir").mkdir(parents=True)
    legacy = hashlib.sha256(b"legacy name").hexdigest()
    (blobs / f"sha256:{legacy}").write_bytes(b"legacy name")
    age(blobs / f"sha256:{legacy}", 10)
    removed = store.prune()
    assert sorted(removed) == sorted(
        [blobs / ".tmp-crashed", manifests / "registry.ollama.ai/library/tiny/.tmp-crashed"]
    )
    assert not (manifests / "registry.ollama.ai/empty").exists()
    assert (blobs / f"sha256-{legacy}").read_bytes() == b"legacy name"
    assert {s.name.display for s in store.all()} == set(ollama_store.models)


def test_prune_with_noprune_only_removes_temp_files(ollama_store: Any, tree: Callable[[Path], Tree]) -> None:
    store = Store(ollama_store.root, noprune=True)
    old = store.blobs.write_bytes(b"orphan").digest
    age(store.blobs.path(old), 2 * HOUR)
    (ollama_store.root / "manifests/registry.ollama.ai/empty").mkdir()
    before = tree(ollama_store.root)
    (ollama_store.root / "blobs/.tmp-crashed").write_bytes(b"x")
    assert store.prune() == [ollama_store.root / "blobs/.tmp-crashed"]
    assert tree(ollama_store.root) == before


def test_prune_of_an_empty_root(tmp_path: Path) -> None:
    assert Store(tmp_path / "new").prune() == []
