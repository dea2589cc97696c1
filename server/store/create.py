"""``create``: build a model's layers and write its manifest, as Ollama's current create does.

The input is the JSON form of ``/api/create`` (``CreateSpec``): weights come either from an existing model
(``from``) or from blobs already in the store (``files``: one GGUF, or a safetensors model directory that is
converted), optionally quantized (``quantize``); template, system, license, parameters and
messages layers replace or extend what the base model had. Progress is reported through a callback with
Ollama's status strings. Every layer is stored before the manifest is written, and the manifest write is a
single atomic rename, so a failed or interrupted create leaves the store as it was (at most some blobs that
the start-up prune removes).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.errors import BadRequest, DigestMismatch, InvalidModelFile, ModelNotFound, TemplateError
from server.gocompat import jsonenc as gojson
from server.gotemplate import Template
from server.store.blobs import Digest
from server.store.convert import FILE_TYPES as CONVERT_TYPES
from server.store.convert import check_directory, convert_directory, is_safetensors_model
from server.store.gguf_info import GGUFInfo, read_gguf
from server.store.manifest import CONFIG_MEDIA_TYPE, Layer, Manifest, MediaType, ModelConfig
from server.store.names import ModelName
from server.store.quantize import Counts, QuantizeType, check_source, parse_type, quantize_file
from server.store.store import Store

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CreateSpec:
    """What to build. Mirrors the JSON body of ``POST /api/create``."""

    name: ModelName
    from_: str | None = None
    files: Mapping[str, Digest] = field(default_factory=dict)
    adapters: Mapping[str, Digest] = field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    license: tuple[str, ...] | None = None
    parameters: Mapping[str, Any] | None = None
    messages: tuple[Mapping[str, Any], ...] | None = None
    requires: str | None = None
    quantize: str | None = None


@dataclass
class _Build:
    layers: list[Layer]
    config: ModelConfig
    created: set[Digest] = field(default_factory=set)

    def statuses(self) -> list[str]:
        """One line per final layer, as Ollama reports them after all layers are built."""
        return [
            f"{'creating new layer' if layer.digest in self.created else 'using existing layer'} {layer.digest}"
            for layer in self.layers
        ]


def create_model(
    store: Store, spec: CreateSpec, progress: Progress, *, expected: str | None = None, counts: Counts | None = None
) -> str:
    """Create ``spec.name`` in ``store``; returns the new manifest digest (hex).

    With ``expected`` (a manifest digest), a build that comes out different raises ``DigestMismatch`` and the
    manifest is not written. ``files`` holding ``*.safetensors`` are a model directory, converted to GGUF first
    (``server.store.convert``; status ``converting model``). With ``spec.quantize`` the weights are quantized
    (see ``server.store.quantize``); its progress lines carry byte counts, reported through ``counts`` when
    given (else as plain statuses, once each).

    Raises ``BadRequest`` subclasses for invalid input (missing weights, a blob that is not GGUF, a template
    that does not parse, more than one adapter) before anything is written, and ``ModelNotFound`` when
    ``from`` names a model the store does not have.
    """
    if not spec.from_ and not spec.files:
        raise BadRequest("neither 'from' or 'files' was specified")
    if len(spec.adapters) > 1:
        raise BadRequest("only one adapter is currently supported")
    if spec.template:
        try:
            Template.parse(spec.template)
        except TemplateError as exc:
            raise TemplateError(f"template error: {exc}") from exc
    wanted = parse_type(spec.quantize) if spec.quantize else None
    converting = is_safetensors_model(list(spec.files))
    with store.lock(exclusive=False):
        build = _converted(store, spec, wanted, progress) if converting else _base(store, spec)
        source = _model_info(store, build) if wanted is not None else None
        if source is not None:
            check_source(source)
        _add_adapters(store, spec, build)
        # Statuses are reported once every input has been checked, so that a bad request fails with its
        # real status code instead of an error line in a stream that already said 200.
        if spec.files and not converting:
            progress("parsing GGUF")
        if wanted is not None and source is not None and source.file_type != wanted.name:
            _quantize(store, build, source, wanted, progress, counts)
        _apply_text_layers(store, spec, build)
        for status in build.statuses():
            progress(status)
        progress("writing manifest")
        config_blob = store.blobs.write_bytes(build.config.encode([layer.digest for layer in build.layers]))
        config = Layer(CONFIG_MEDIA_TYPE, config_blob.digest, config_blob.size)
        manifest = Manifest(config=config, layers=tuple(build.layers))
        if expected is not None and Digest.from_bytes(manifest.encode()).hex != expected:
            raise DigestMismatch(f"sha256:{expected}", str(Digest.from_bytes(manifest.encode())))
        digest = store.write_manifest(spec.name, manifest)
    progress("success")
    return digest


def config_for(info: GGUFInfo, *, requires: str = "") -> ModelConfig:
    """The config blob Ollama writes for GGUF weights."""
    return ModelConfig(
        model_format="gguf",
        model_family=info.architecture,
        model_families=(info.architecture,) if info.architecture else (),
        model_type=human_number(info.parameter_count),
        file_type=info.file_type,
        requires=requires,
    )


def human_number(count: int) -> str:
    """Ollama's parameter-size format: ``8B``, ``7.6B``, ``134.52M``, ``500K``."""
    if count >= 1_000_000_000:
        value = count / 1_000_000_000
        return f"{value:.0f}B" if value.is_integer() else f"{value:.1f}B"
    if count >= 1_000_000:
        value = count / 1_000_000
        return f"{value:.0f}M" if value.is_integer() else f"{value:.2f}M"
    if count >= 1_000:
        return f"{count / 1000:.0f}K"
    return str(count)


def _base(store: Store, spec: CreateSpec) -> _Build:
    if spec.files:
        if len(spec.files) > 1:
            raise BadRequest("only one GGUF file is supported per model")
        digest = next(iter(spec.files.values()))
        info = _gguf_blob(store, digest)
        layer = Layer(MediaType.MODEL, digest, store.blobs.size(digest))
        return _Build(layers=[layer], config=config_for(info, requires=spec.requires or ""))
    assert spec.from_ is not None
    base_name = ModelName.try_parse(spec.from_)
    base = store.get(base_name) if base_name else None
    if base is None:
        raise ModelNotFound(f"model '{spec.from_}' not found")
    # Ollama re-reads every inherited layer with the base's short name as its source.
    parent = base.name.display
    layers = [
        Layer(layer.media_type, layer.digest, layer.size, parent, layer.name)
        for layer in base.manifest.layers
        if layer.media_type != MediaType.EMBED
    ]
    config = store.config(base)
    if spec.requires:
        config = dataclasses.replace(config, requires=spec.requires)
    return _Build(layers=layers, config=config)


def _converted(store: Store, spec: CreateSpec, wanted: QuantizeType | None, progress: Progress) -> _Build:
    """Convert the safetensors model in ``spec.files`` to GGUF (matrices in ``wanted``'s type when it is F32,
    F16 or BF16, else F16, to be quantized next) and store it as the model layer. Every input is checked
    before ``converting model`` is reported."""
    for digest in spec.files.values():
        if not store.blobs.exists(digest):
            raise BadRequest(f"blob {digest} not found, upload it with POST /api/blobs/{digest} first")
    store.blobs.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.blobs.root, prefix=".work-") as work:
        source = Path(work) / "model"
        for name, digest in spec.files.items():
            link = source / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(store.blobs.path(digest))
        check_directory(source)
        outtype = wanted.name if wanted is not None and wanted.name in CONVERT_TYPES else "F16"
        progress("converting model")
        target = Path(work) / "model.gguf"
        convert_directory(source, target, outtype, lambda done, total: None)
        info = _verified(target)
        written = store.blobs.import_file(target)
    build = _Build(
        layers=[Layer(MediaType.MODEL, written.digest, written.size)],
        config=config_for(info, requires=spec.requires or ""),
    )
    if written.created:
        build.created.add(written.digest)
    return build


def _model_info(store: Store, build: _Build) -> GGUFInfo:
    layer = next((layer for layer in build.layers if layer.media_type == MediaType.MODEL), None)
    if layer is None:
        raise BadRequest("the model has no weights to quantize")
    return _gguf_blob(store, layer.digest)


def _quantize(
    store: Store, build: _Build, source: GGUFInfo, wanted: QuantizeType, progress: Progress, counts: Counts | None
) -> None:
    """Replace the model layer of ``build`` by its quantized version, and the config's file type."""
    index, layer = next((i, ly) for i, ly in enumerate(build.layers) if ly.media_type == MediaType.MODEL)
    seen: set[str] = set()

    def report(status: str, digest: str, total: int, completed: int) -> None:
        if counts is not None:
            counts(status, digest, total, completed)
        elif status not in seen:
            seen.add(status)
            progress(status)

    store.blobs.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.blobs.root, prefix=".work-") as work:
        target = Path(work) / f"{wanted.name}.gguf"
        quantize_file(store.blobs.path(layer.digest), target, source, wanted, report)
        progress("verifying conversion")
        info = _verified(target)
        written = store.blobs.import_file(target)
    if written.created:
        build.created.add(written.digest)
    build.layers[index] = Layer(layer.media_type, written.digest, written.size, layer.from_, layer.name)
    build.config = dataclasses.replace(build.config, file_type=info.file_type)


def _verified(path: Path) -> GGUFInfo:
    try:
        return read_gguf(path)
    except Exception as exc:  # the quantizer or converter wrote something unreadable: nothing is stored
        raise InvalidModelFile(f"the new model file is not valid GGUF: {exc}") from exc


def _gguf_blob(store: Store, digest: Digest) -> GGUFInfo:
    if not store.blobs.exists(digest):
        raise BadRequest(f"blob {digest} not found, upload it with POST /api/blobs/{digest} first")
    try:
        return read_gguf(store.blobs.path(digest))
    except InvalidModelFile:
        raise
    except Exception as exc:  # a damaged file must never take the server down
        raise InvalidModelFile(f"supplied file was not in GGUF format: {exc}") from exc


def _add_adapters(store: Store, spec: CreateSpec, build: _Build) -> None:
    """Append the request's LoRA adapter (one per request, Ollama's rule) after the ones inherited from the base
    model: a model may stack several adapters by building on a model that has one. An adapter made for
    another architecture is refused here rather than failing every load."""
    if not spec.adapters:
        return
    model = next((layer for layer in build.layers if layer.media_type == MediaType.MODEL), None)
    arch = _gguf_blob(store, model.digest).architecture if model is not None else ""
    for digest in spec.adapters.values():
        info = _gguf_blob(store, digest)
        if arch and info.architecture and info.architecture != arch:
            raise BadRequest(f"the adapter is for {info.architecture} models; this model is {arch}")
        if any(layer.media_type == MediaType.ADAPTER and layer.digest == digest for layer in build.layers):
            continue
        build.layers.append(Layer(MediaType.ADAPTER, digest, store.blobs.size(digest)))


def _apply_text_layers(store: Store, spec: CreateSpec, build: _Build) -> None:
    """Ollama's overlay (``ApplyModelfileLayers``): an empty value leaves the inherited layer alone; template
    and system replace, licenses are appended, parameters are merged over the inherited ones (request wins),
    messages replace. JSON layers are written as Go's encoder writes them (sorted map keys, a newline)."""
    if spec.template:
        _replace(store, build, [MediaType.TEMPLATE, MediaType.PROMPT], MediaType.TEMPLATE, [spec.template.encode()])
    if spec.system:
        _replace(store, build, [MediaType.SYSTEM], MediaType.SYSTEM, [spec.system.encode()])
    if spec.license:
        _replace(store, build, [], MediaType.LICENSE, [text.encode() for text in spec.license])
    if spec.parameters:
        merged = {**_inherited_params(store, build), **spec.parameters}
        _replace(store, build, [MediaType.PARAMS], MediaType.PARAMS, [gojson.encode(merged, sort_keys=True)])
    if spec.messages:
        encoded = gojson.encode([dict(m) for m in spec.messages])
        _replace(store, build, [MediaType.MESSAGES], MediaType.MESSAGES, [encoded])


def _inherited_params(store: Store, build: _Build) -> dict[str, Any]:
    for layer in build.layers:
        if layer.media_type == MediaType.PARAMS:
            try:
                loaded = json.loads(store.blobs.read_bytes(layer.digest))
            except (OSError, ValueError):
                return {}
            return loaded if isinstance(loaded, dict) else {}
    return {}


def _replace(store: Store, build: _Build, remove: list[str], media_type: str, blobs: list[bytes]) -> None:
    build.layers = [layer for layer in build.layers if layer.media_type not in remove]
    for data in blobs:
        written = store.blobs.write_bytes(data)
        build.layers.append(Layer(media_type, written.digest, written.size))
        if written.created:
            build.created.add(written.digest)
