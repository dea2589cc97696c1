"""``create``: layers and config in Ollama's order and bytes, inheritance, idempotence, bad input leaving the
store untouched, concurrent creates, and crashes at every step."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.errors import BadRequest, InvalidModelFile, ModelNotFound, TemplateError
from server.store.blobs import Digest
from server.store.create import CreateSpec, create_model, human_number
from server.store.manifest import CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, Manifest, MediaType, ModelConfig
from server.store.names import ModelName
from server.store.store import Store

from .creation import Statuses

Tree = dict[str, bytes | None]

TEMPLATE = "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}<|im_start|>user\n{{ .Prompt }}"
SYSTEM = "You are a helpful assistant."
PARAMETERS = {"temperature": 0.6, "stop": ["<|im_end|>"]}
PARAMS_BLOB = b'{"stop":["\\u003c|im_end|\\u003e"],"temperature":0.6}\n'  # Go: sorted keys, <> escaped, newline
MESSAGES = ({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"})
MESSAGES_BLOB = b'[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]\n'
NAME = ModelName.parse("smollm2:135m")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> tuple[Path, Digest]:
    """smollm2 imported once into a store; tests link the blob into their own store."""
    store = Store(tmp_path_factory.mktemp("source") / "models")
    written = store.blobs.import_file(smollm2_path)
    assert written.created and written.size == smollm2_path.stat().st_size
    assert written.digest == Digest(hashlib.sha256(smollm2_path.read_bytes()).hexdigest())
    return store.blobs.path(written.digest), written.digest


def linked_store(root: Path, imported: tuple[Path, Digest]) -> Store:
    store = Store(root)
    store.blobs.root.mkdir(parents=True)
    os.link(imported[0], store.blobs.path(imported[1]))
    return store


@pytest.fixture
def store(tmp_path: Path, imported: tuple[Path, Digest]) -> Store:
    return linked_store(tmp_path / "models", imported)


@pytest.fixture
def gguf_digest(imported: tuple[Path, Digest]) -> Digest:
    return imported[1]


def full_spec(digest: Digest, **changes: Any) -> CreateSpec:
    values: dict[str, Any] = {
        "name": NAME,
        "files": {"SmolLM2-135M-Instruct.Q4_1.gguf": digest},
        "template": TEMPLATE,
        "system": SYSTEM,
        "license": ("Apache License 2.0", "Second license"),
        "parameters": PARAMETERS,
        "messages": MESSAGES,
    }
    values.update(changes)
    return CreateSpec(**values)


def manifest_of(store: Store, name: str | ModelName) -> Manifest:
    stored = store.get(name if isinstance(name, ModelName) else ModelName.parse(name))
    assert stored is not None
    return stored.manifest


def layer_blob(store: Store, manifest: Manifest, media_type: str) -> bytes:
    layer = manifest.find(media_type)
    assert layer is not None, media_type
    return store.blobs.read_bytes(layer.digest)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".tmp-*")]


def assert_valid(store: Store) -> None:
    """Every manifest parses and every blob it names exists with the size it declares; no temp file is left."""
    for stored in store.all():
        for layer in (stored.manifest.config, *stored.manifest.layers):
            assert store.blobs.exists(layer.digest), layer
            assert store.blobs.size(layer.digest) == layer.size
    assert temp_files(store.root) == []


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (134_515_008, "134.52M"),
        (8_030_261_248, "8.0B"),
        (7_615_616_512, "7.6B"),
        (1_000_000_000, "1B"),
        (137_000_000, "137M"),
        (1_500_000, "1.50M"),
        (500_000, "500K"),
        (1_000, "1K"),
        (999, "999"),
        (64, "64"),
    ],
)
def test_human_number(count: int, text: str) -> None:
    assert human_number(count) == text


def test_create_from_files(store: Store, gguf_digest: Digest, go_encode: Callable[[object], bytes]) -> None:
    statuses = Statuses()
    digest = create_model(store, full_spec(gguf_digest), statuses)

    manifest = manifest_of(store, "smollm2:135m")
    assert [layer.media_type for layer in manifest.layers] == [
        MediaType.MODEL,
        MediaType.TEMPLATE,
        MediaType.SYSTEM,
        MediaType.LICENSE,
        MediaType.LICENSE,
        MediaType.PARAMS,
        MediaType.MESSAGES,
    ]
    model = manifest.layers[0]
    assert (model.digest, model.size) == (gguf_digest, store.blobs.size(gguf_digest))
    assert layer_blob(store, manifest, MediaType.TEMPLATE) == TEMPLATE.encode()
    assert layer_blob(store, manifest, MediaType.SYSTEM) == SYSTEM.encode()
    assert [store.blobs.read_bytes(layer.digest) for layer in manifest.find_all(MediaType.LICENSE)] == [
        b"Apache License 2.0",
        b"Second license",
    ]
    assert layer_blob(store, manifest, MediaType.PARAMS) == PARAMS_BLOB
    assert layer_blob(store, manifest, MediaType.MESSAGES) == MESSAGES_BLOB

    layer_digests = [str(layer.digest) for layer in manifest.layers]
    assert statuses == [
        "parsing GGUF",
        f"using existing layer {layer_digests[0]}",
        *[f"creating new layer {d}" for d in layer_digests[1:]],
        "writing manifest",
        "success",
    ]

    config_bytes = store.blobs.read_bytes(manifest.config.digest)
    assert config_bytes == go_encode(
        {
            "model_format": "gguf",
            "model_family": "llama",
            "model_families": ["llama"],
            "model_type": "134.52M",
            "file_type": "Q4_1",
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": layer_digests},
        }
    )
    config = ModelConfig.decode(config_bytes)
    assert (config.model_family, config.model_type, config.file_type) == ("llama", "134.52M", "Q4_1")

    path = store.manifests / "registry.ollama.ai/library/smollm2/135m"
    data = path.read_bytes()
    assert data == go_encode(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": CONFIG_MEDIA_TYPE,
                "digest": str(manifest.config.digest),
                "size": len(config_bytes),
            },
            "layers": [
                {"mediaType": layer.media_type, "digest": str(layer.digest), "size": layer.size}
                for layer in manifest.layers
            ],
        }
    )
    assert digest == hashlib.sha256(data).hexdigest()
    content = store.content(store.get(NAME))  # type: ignore[arg-type]
    assert content.parameters == {"temperature": 0.6, "stop": ["<|im_end|>"]}
    assert content.messages == [dict(m) for m in MESSAGES]
    assert_valid(store)


def test_create_with_weights_only(store: Store, gguf_digest: Digest) -> None:
    statuses = Statuses()
    create_model(store, CreateSpec(name=NAME, files={"m.gguf": gguf_digest}), statuses)
    manifest = manifest_of(store, NAME)
    assert [layer.media_type for layer in manifest.layers] == [MediaType.MODEL]
    assert statuses == ["parsing GGUF", f"using existing layer {gguf_digest}", "writing manifest", "success"]


def test_adapter_follows_the_model(store: Store, gguf_digest: Digest, tiny_gguf: Path) -> None:
    adapter = store.blobs.import_file(tiny_gguf).digest
    create_model(store, full_spec(gguf_digest, adapters={"lora.gguf": adapter}), Statuses())
    types = [layer.media_type for layer in manifest_of(store, NAME).layers]
    assert types[:3] == [MediaType.MODEL, MediaType.ADAPTER, MediaType.TEMPLATE]
    assert store.content(store.get(NAME)).adapter_paths == [store.blobs.path(adapter)]  # type: ignore[arg-type]


@pytest.fixture
def base(store: Store, gguf_digest: Digest) -> Manifest:
    spec = full_spec(gguf_digest, license=("Base license",), messages=None)
    create_model(store, spec, Statuses())
    return manifest_of(store, NAME)


def test_create_from_an_existing_model_inherits_and_merges(store: Store, base: Manifest) -> None:
    statuses = Statuses()
    spec = CreateSpec(
        name=ModelName.parse("child"),
        from_="SMOLLM2:135M",
        system="Child system",
        license=("Child license",),
        parameters={"temperature": 0.2, "num_ctx": 4096},
    )
    create_model(store, spec, statuses)
    child = manifest_of(store, "child")
    by_type = {layer.media_type: layer for layer in base.layers}
    assert [layer.media_type for layer in child.layers] == [
        MediaType.MODEL,
        MediaType.TEMPLATE,
        MediaType.LICENSE,
        MediaType.SYSTEM,
        MediaType.LICENSE,
        MediaType.PARAMS,
    ]
    inherited = child.layers[:3]
    assert [layer.digest for layer in inherited] == [
        by_type[MediaType.MODEL].digest,
        by_type[MediaType.TEMPLATE].digest,
        by_type[MediaType.LICENSE].digest,
    ]
    assert {layer.from_ for layer in inherited} == {"smollm2:135m"}
    assert {layer.from_ for layer in child.layers[3:]} == {""}
    content = store.content(store.get(ModelName.parse("child")))  # type: ignore[arg-type]
    assert content.parent_model == "smollm2:135m"
    assert content.system == "Child system"
    assert content.template == TEMPLATE
    assert content.licenses == ["Base license", "Child license"]
    assert layer_blob(store, child, MediaType.PARAMS) == (
        b'{"num_ctx":4096,"stop":["\\u003c|im_end|\\u003e"],"temperature":0.2}\n'
    )
    assert statuses == [
        *[f"using existing layer {layer.digest}" for layer in inherited],
        *[f"creating new layer {layer.digest}" for layer in child.layers[3:]],
        "writing manifest",
        "success",
    ]
    base_config = ModelConfig.decode(store.blobs.read_bytes(base.config.digest))
    assert ModelConfig.decode(store.blobs.read_bytes(child.config.digest)) == base_config
    assert_valid(store)


def test_empty_values_leave_inherited_layers_alone(store: Store, base: Manifest) -> None:
    spec = CreateSpec(
        name=ModelName.parse("same"),
        from_="smollm2:135m",
        template="",
        system="",
        license=(),
        parameters={},
        messages=(),
    )
    create_model(store, spec, Statuses())
    same = manifest_of(store, "same")
    assert [(layer.media_type, layer.digest) for layer in same.layers] == [
        (layer.media_type, layer.digest) for layer in base.layers
    ]


def test_messages_replace_inherited_messages(store: Store, gguf_digest: Digest) -> None:
    create_model(store, full_spec(gguf_digest), Statuses())
    new = ({"role": "user", "content": "<b>"},)
    create_model(store, CreateSpec(name=ModelName.parse("m2"), from_="smollm2:135m", messages=new), Statuses())
    child = manifest_of(store, "m2")
    assert [layer.media_type for layer in child.layers][-1] == MediaType.MESSAGES
    assert len(child.find_all(MediaType.MESSAGES)) == 1
    assert layer_blob(store, child, MediaType.MESSAGES) == b'[{"role":"user","content":"\\u003cb\\u003e"}]\n'


def test_legacy_prompt_layer_is_replaced_by_a_template(store: Store, base: Manifest) -> None:
    prompt = store.blobs.write_bytes(b"{{ .Prompt }}")
    layers = tuple(
        layer if layer.media_type != MediaType.TEMPLATE else type(layer)(MediaType.PROMPT, prompt.digest, prompt.size)
        for layer in base.layers
    )
    store.write_manifest(ModelName.parse("legacy"), Manifest(config=base.config, layers=layers))
    create_model(store, CreateSpec(name=ModelName.parse("new"), from_="legacy", template="{{ .System }}"), Statuses())
    types = [layer.media_type for layer in manifest_of(store, "new").layers]
    assert MediaType.PROMPT not in types and types.count(MediaType.TEMPLATE) == 1


def test_same_create_twice_is_idempotent(store: Store, gguf_digest: Digest) -> None:
    first = create_model(store, full_spec(gguf_digest), Statuses())
    path = store.manifests / "registry.ollama.ai/library/smollm2/135m"
    os.utime(path, (1_000_000_000, 1_000_000_000))
    before = path.stat()
    statuses = Statuses()
    second = create_model(store, full_spec(gguf_digest), statuses)
    assert second == first
    after = path.stat()
    assert (after.st_mtime, after.st_ino) == (before.st_mtime, before.st_ino)
    assert all(s.startswith("using existing layer") for s in statuses[1:-2])
    assert [s.name.display for s in store.all()] == ["smollm2:135m"]


def test_create_onto_a_differently_cased_name_keeps_the_stored_spelling(store: Store, gguf_digest: Digest) -> None:
    create_model(store, full_spec(gguf_digest), Statuses())
    create_model(store, full_spec(gguf_digest, name=ModelName.parse("SmolLM2:135M"), system="new"), Statuses())
    assert [s.name.display for s in store.all()] == ["smollm2:135m"]
    assert store.content(store.get(NAME)).system == "new"  # type: ignore[arg-type]


def _bad_inputs(store: Store, digest: Digest, tiny: Path) -> Iterator[tuple[str, CreateSpec, type[Exception], str]]:
    not_gguf = store.blobs.write_bytes(b"this is not a GGUF file, only some text long enough").digest
    truncated = store.blobs.write_bytes(tiny.read_bytes()[:-10]).digest
    adapter = store.blobs.write_bytes(tiny.read_bytes()).digest
    missing = Digest("0" * 64)
    yield "neither", CreateSpec(name=NAME), BadRequest, "neither 'from' or 'files' was specified"
    yield "missing-from", CreateSpec(name=NAME, from_="nothere"), ModelNotFound, "model 'nothere' not found"
    yield "invalid-from", CreateSpec(name=NAME, from_="../x"), ModelNotFound, "not found"
    yield "missing-blob", CreateSpec(name=NAME, files={"m.gguf": missing}), BadRequest, f"blob {missing} not found"
    yield (
        "not-gguf",
        full_spec(not_gguf),
        InvalidModelFile,
        "supplied file was not in GGUF format",
    )
    yield "truncated", full_spec(truncated), InvalidModelFile, "truncated"
    yield (
        "two-adapters",
        full_spec(digest, adapters={"a.gguf": adapter, "b.gguf": truncated}),
        BadRequest,
        "only one adapter is currently supported",
    )
    yield "bad-adapter", full_spec(digest, adapters={"a.gguf": not_gguf}), InvalidModelFile, "not in GGUF format"
    yield "missing-adapter", full_spec(digest, adapters={"a.gguf": missing}), BadRequest, "not found"
    yield "two-files", full_spec(digest, files={"a.gguf": digest, "b.gguf": adapter}), BadRequest, "one GGUF file"
    yield "bad-template", full_spec(digest, template="{{ .Prompt"), TemplateError, "template error: "
    yield "bad-template-end", full_spec(digest, template="{{ end }}"), TemplateError, "template error: "


BAD_INPUTS = [
    "neither",
    "missing-from",
    "invalid-from",
    "missing-blob",
    "not-gguf",
    "truncated",
    "two-adapters",
    "bad-adapter",
    "missing-adapter",
    "two-files",
    "bad-template",
    "bad-template-end",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize("existing", [False, True], ids=["empty", "with-model"])
def test_bad_input_leaves_the_store_unchanged(
    store: Store,
    gguf_digest: Digest,
    tiny_gguf: Path,
    tree: Callable[[Path], Tree],
    case: str,
    existing: bool,
) -> None:
    if existing:
        create_model(store, full_spec(gguf_digest), Statuses())
    cases = {name: rest for name, *rest in _bad_inputs(store, gguf_digest, tiny_gguf)}
    assert sorted(cases) == sorted(BAD_INPUTS)
    spec, error, message = cases[case]
    before = tree(store.root)
    statuses = Statuses()
    with pytest.raises(error) as info:  # type: ignore[arg-type]
        create_model(store, spec, statuses)
    assert message in str(info.value)
    assert info.value.status_code in (400, 404)  # type: ignore[attr-defined]
    assert tree(store.root) == before
    assert statuses == []  # nothing was reported before the error, so the API can still answer 4xx


def _create_in_thread(store: Store, spec: CreateSpec, barrier: threading.Barrier, out: list[Any]) -> None:
    barrier.wait()
    try:
        out.append(create_model(store, spec, Statuses()))
    except BaseException as exc:  # reported by the test
        out.append(exc)


@pytest.mark.parametrize("same_spec", [True, False], ids=["same-spec", "different-system"])
def test_two_threads_creating_the_same_model(store: Store, gguf_digest: Digest, same_spec: bool) -> None:
    for round_ in range(5):
        specs = [full_spec(gguf_digest, system=SYSTEM if same_spec else f"system {round_}-{i}") for i in range(2)]
        barrier = threading.Barrier(2)
        results: list[Any] = []
        threads = [threading.Thread(target=_create_in_thread, args=(store, s, barrier, results)) for s in specs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert all(isinstance(r, str) for r in results), results
        stored = store.get(NAME)
        assert stored is not None and stored.digest in results
        if same_spec:
            assert len(set(results)) == 1
        assert [s.name.display for s in store.all()] == ["smollm2:135m"]
        assert_valid(store)


def _create_in_process(root: str, digest_hex: str, system: str, barrier: Any) -> None:
    barrier.wait()
    create_model(Store(Path(root)), full_spec(Digest(digest_hex), system=system), lambda _: None)


def test_two_processes_creating_the_same_model(store: Store, gguf_digest: Digest) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    processes = [
        context.Process(target=_create_in_process, args=(str(store.root), gguf_digest.hex, f"system {i}", barrier))
        for i in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0, 0]
    stored = store.get(NAME)
    assert stored is not None
    assert store.content(stored).system in {"system 0", "system 1"}
    assert [s.name.display for s in store.all()] == ["smollm2:135m"]
    assert_valid(store)


class Crash(Exception):
    pass


def _statuses_of_a_full_create(root: Path, imported: tuple[Path, Digest]) -> list[str]:
    statuses = Statuses()
    create_model(linked_store(root, imported), full_spec(imported[1]), statuses)
    return statuses


def test_a_crash_at_any_status_leaves_no_manifest(tmp_path: Path, imported: tuple[Path, Digest]) -> None:
    statuses = _statuses_of_a_full_create(tmp_path / "reference", imported)
    assert len(statuses) == 1 + 7 + 2
    for index, status in enumerate(statuses):
        store = linked_store(tmp_path / f"crash-{index}", imported)
        calls = 0

        def progress(current: str, index: int = index) -> None:
            nonlocal calls
            calls += 1
            if calls == index + 1:
                raise Crash(current)

        with pytest.raises(Crash) as info:
            create_model(store, full_spec(imported[1]), progress)
        assert str(info.value) == status
        assert temp_files(store.root) == []
        store.prune()
        assert temp_files(store.root) == []
        if status == "success":  # the manifest is written before success is reported, as in Ollama
            assert store.get(NAME) is not None
            assert_valid(store)
        else:
            assert store.get(NAME) is None, status
            assert store.all() == []
            assert store.blobs.exists(imported[1])


def test_prune_waits_for_a_create_in_progress(store: Store, gguf_digest: Digest) -> None:
    """An uploaded GGUF older than the grace period is unreferenced until the manifest exists; a prune that
    starts mid-create must wait for the create instead of deleting the weights under it."""
    then = 1_000_000_000
    os.utime(store.blobs.path(gguf_digest), (then, then))
    pruner: list[threading.Thread] = []

    def progress(status: str) -> None:
        if status == "parsing GGUF":
            thread = threading.Thread(target=store.prune)
            thread.start()
            pruner.append(thread)
            thread.join(0.3)
            assert thread.is_alive(), "prune ran while a create held the store"

    create_model(store, full_spec(gguf_digest), progress)
    pruner[0].join(30)
    assert not pruner[0].is_alive()
    assert store.blobs.exists(gguf_digest)
    assert store.get(NAME) is not None
    assert_valid(store)
