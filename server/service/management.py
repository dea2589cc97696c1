"""Model management, shared by every surface (HTTP API, CLI through the API, catalog apply).

Functions take a ``Store`` and plain values, return wire models or raise typed errors with Ollama's texts.
They are blocking (file I/O and store locks); the API layer runs them in a worker thread.
"""

from __future__ import annotations

import dataclasses
import posixpath
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from server.errors import BadRequest, InvalidDigest, InvalidModelName, ModelNotFound, TemplateError
from server.gocompat.timefmt import rfc3339
from server.gotemplate import Template
from server.options import format_parameter_lines
from server.protocol import ollama as api
from server.registry.client import registry_options
from server.registry.progress import Progress as TransferProgress
from server.registry.pull import pull_model
from server.registry.push import push_model
from server.settings import Settings
from server.store.blobs import Digest
from server.store.convert import model_files
from server.store.create import CreateSpec, create_model
from server.store.gguf_info import GGUFInfo, read_gguf
from server.store.modelfile import Modelfile, parse_modelfile, render_modelfile
from server.store.names import ModelName
from server.store.quantize import Counts, parse_type
from server.store.store import ModelContent, Store, StoredManifest

Progress = Callable[[str], None]


def list_models(store: Store) -> api.ListResponse:
    """``/api/tags``: every model, newest first."""
    stored = sorted(store.all(), key=lambda s: s.modified, reverse=True)
    return api.ListResponse(
        models=[
            api.ListModel(
                name=s.name.display,
                model=s.name.display,
                modified_at=rfc3339(s.modified_at),
                size=s.manifest.size,
                digest=s.digest,
                details=details(store, s),
            )
            for s in stored
        ]
    )


def details(store: Store, stored: StoredManifest) -> api.ModelDetails:
    config = store.config(stored)
    model_layer = stored.manifest.find("application/vnd.ollama.image.model")
    return api.ModelDetails(
        parent_model=model_layer.from_ if model_layer else "",
        format=config.model_format,
        family=config.model_family,
        families=list(config.model_families) or None,
        parameter_size=config.model_type,
        quantization_level=config.file_type,
    )


def show_model(store: Store, request: api.ShowRequest) -> api.ShowResponse:
    """``/api/show``: details, parameters, template, Modelfile, GGUF metadata and capabilities."""
    text = request.model or request.name
    if not text:
        raise BadRequest("model is required")
    name = ModelName.parse(text)
    stored = store.get(name)
    if stored is None:
        raise ModelNotFound(f"model '{name.display}' not found")
    content = store.content(stored)
    info = read_gguf(content.model_path, full_arrays=request.verbose) if content.model_path else None
    parameters = {**content.parameters, **(request.options or {})}
    system = request.system if request.system is not None else content.system
    return api.ShowResponse(
        license="\n".join(content.licenses) or None,
        modelfile=modelfile_text(stored, content, parameters=parameters, system=system),
        parameters=format_parameter_lines(parameters) or None,
        template=content.template or None,
        system=system or None,
        details=details(store, stored),
        messages=content.messages or None,
        model_info=info.model_info() if info else {},
        tensors=[api.Tensor(name=t.name, type=t.type, shape=list(t.shape)) for t in info.tensors]
        if info and request.verbose
        else None,
        capabilities=capabilities(info, content),
        modified_at=rfc3339(stored.modified_at),
    )


def modelfile_text(stored: StoredManifest, content: ModelContent, *, parameters: dict[str, Any], system: str) -> str:
    """The Modelfile ``ollama show --modelfile`` prints; it parses back into the same model.

    A model created through the JSON API may hold values no Modelfile line can carry (a message with an
    unknown role, a text with a line break right after three double quotes): those are left out, with a comment saying
    so, rather than failing ``/api/show`` for the whole model."""
    fields: dict[str, Any] = {
        "template": content.template or None,
        "system": system or None,
        "parameters": parameters,
        "licenses": content.licenses,
        "messages": [(str(m.get("role", "")), str(m.get("content", ""))) for m in content.messages],
        "adapters": [str(p) for p in content.adapter_paths],
    }
    source = str(content.model_path) if content.model_path else stored.name.display
    try:
        return render_modelfile(from_=source, header_for=stored.name.display, **fields)
    except ValueError:
        pass
    kept, dropped = _renderable_fields(source, fields)
    text = render_modelfile(from_=source, header_for=stored.name.display, **kept)
    return text + f"# {dropped} value(s) left out: they cannot be written as Modelfile lines\n"


def _renderable_fields(source: str, fields: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``fields`` less every value that ``render_modelfile`` refuses on its own, and how many were left out."""

    def renders(**one: Any) -> bool:
        try:
            render_modelfile(from_=source, **one)
        except ValueError:
            return False
        return True

    kept: dict[str, Any] = {}
    dropped = 0
    for key, value in fields.items():
        if isinstance(value, dict):
            kept[key] = {k: v for k, v in value.items() if renders(**{key: {k: v}})}
        elif isinstance(value, list | tuple):
            kept[key] = [v for v in value if renders(**{key: [v]})]
        else:
            kept[key] = value if renders(**{key: value}) else None
        dropped += _count(value) - _count(kept[key])
    return kept, dropped


def _count(value: Any) -> int:
    if isinstance(value, dict | list | tuple):
        return len(value)
    return 0 if value is None else 1


def capabilities(info: GGUFInfo | None, content: ModelContent) -> list[str]:
    """Ollama's derivation: embedding models have ``<arch>.pooling_type``; tools and insert come from what
    the template references; vision from the GGUF or a projector layer; the config's list is added."""
    caps: list[str] = []
    if info is not None:
        caps.append("embedding" if info.is_embedding else "completion")
        if info.has_vision or content.projector_paths:
            caps.append("vision")
    if content.template:
        try:
            template = Template.parse(content.template)
        except TemplateError:
            template = None
        if template is not None:
            if template.references("Tools"):
                caps.append("tools")
            if template.references("Suffix"):
                caps.append("insert")
            if template.references("Thinking") or template.references("Think"):
                caps.append("thinking")
    caps += [c for c in content.config.capabilities if c not in caps]
    return caps


def create(
    store: Store,
    request: api.CreateRequest,
    progress: Progress,
    *,
    import_dirs: Sequence[Path] = (),
    counts: Counts | None = None,
) -> str:
    """``/api/create`` in its JSON form, or the legacy ``modelfile`` form parsed here. Returns the digest.
    Blocking (the legacy form may import a file, quantization and conversion take a while): run it in a
    worker thread. ``counts`` receives the progress lines that carry byte counts (quantization)."""
    spec = spec_from_request(request, store=store, import_dirs=import_dirs)
    return create_model(store, spec, progress, counts=counts)


def spec_from_request(
    request: api.CreateRequest, *, store: Store | None = None, import_dirs: Sequence[Path] = ()
) -> CreateSpec:
    """Validate a create request into a ``CreateSpec``; all input errors are raised before anything is
    written. The legacy ``modelfile`` form (with ``store``) may name server files only under ``import_dirs``
    (``CORRAL_IMPORT_DIRS``): a client must not be able to probe or import any file the server can read."""
    name = ModelName.parse(request.model or request.name)
    quantize = request.quantize or request.quantization or None
    if quantize is not None:
        parse_type(quantize)  # an unknown type is refused before anything else is looked at
    if request.modelfile is not None and not request.from_ and not request.files and store is not None:
        spec = _legacy_spec(name, request.modelfile, store, tuple(import_dirs))
        return dataclasses.replace(spec, quantize=quantize)
    licenses = [request.license] if isinstance(request.license, str) else request.license
    return CreateSpec(
        name=name,
        from_=request.from_ or None,
        files=_digests(request.files),
        adapters=_digests(request.adapters),
        template=request.template,
        system=request.system,
        license=tuple(licenses) if licenses is not None else None,
        parameters=request.parameters,
        messages=tuple(request.messages) if request.messages is not None else None,
        requires=request.requires,
        quantize=quantize,
    )


def _digests(files: dict[str, str] | None) -> dict[str, Digest]:
    out: dict[str, Digest] = {}
    for path, digest in (files or {}).items():
        normalized = posixpath.normpath(path)
        if path.startswith("/") or normalized.startswith("..") or normalized != path or "\\" in path:
            raise BadRequest("file path must be relative")
        out[path] = Digest.parse(digest) if digest else _invalid_digest()
    return out


def _invalid_digest() -> Digest:
    raise InvalidDigest()


def _legacy_spec(name: ModelName, text: str, store: Store, import_dirs: tuple[Path, ...]) -> CreateSpec:
    request = request_from_modelfile(
        name.display,
        parse_modelfile(text),
        Path.cwd(),
        lambda path: store.blobs.import_file(path).digest,
        allowed_dirs=import_dirs,
    )
    return spec_from_request(request)


def request_from_modelfile(
    model: str,
    modelfile: Modelfile,
    base_dir: Path,
    upload: Callable[[Path], Digest],
    *,
    allowed_dirs: tuple[Path, ...] | None = None,
) -> api.CreateRequest:
    """Turn a parsed Modelfile into the JSON create request, as Ollama's CLI does.

    ``FROM`` and ``ADAPTER`` paths (``~`` expanded, relative to ``base_dir``) that exist are handed to
    ``upload`` (an HTTP blob upload for the CLI, a direct import for catalog apply) and sent as ``files`` /
    ``adapters``; ``FROM @sha256:...`` names a blob already uploaded; anything else is a model name. With
    ``allowed_dirs`` (a Modelfile from a remote client), a path outside those directories is refused before the
    file system is looked at, so the answer says nothing about what exists there.
    """
    files: dict[str, str] | None = None
    from_: str | None = None
    source = modelfile.from_
    blob = source[1:] if source.startswith("@") else source
    if blob.startswith("sha256:") or blob.startswith("sha256-"):
        files = {"model.gguf": str(Digest.parse(blob))}
    elif (path := _local_path(source, base_dir, allowed_dirs)) is not None:
        if path.is_dir():  # a safetensors model: every file it needs, by its path in the directory
            files = {file.relative_to(path).as_posix(): str(upload(file)) for file in model_files(path)}
        else:
            files = {path.name: str(upload(path))}
    else:
        from_ = source
    adapters: dict[str, str] = {}
    for adapter in modelfile.adapters:
        adapter_path = _local_path(adapter, base_dir, allowed_dirs)
        if adapter_path is None or adapter_path.is_dir():
            raise BadRequest(f"adapter file {adapter!r} does not exist (a LoRA adapter is one GGUF file)")
        adapters[adapter_path.name] = str(upload(adapter_path))
    return api.CreateRequest.model_validate(
        {
            "model": model,
            "from": from_,
            "files": files,
            "adapters": adapters or None,
            "template": modelfile.template,
            "system": modelfile.system,
            "license": list(modelfile.licenses) or None,
            "parameters": dict(modelfile.parameters) or None,
            "messages": [{"role": role, "content": content} for role, content in modelfile.messages] or None,
            "requires": modelfile.requires,
        }
    )


def _local_path(text: str, base_dir: Path, allowed_dirs: tuple[Path, ...] | None) -> Path | None:
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if allowed_dirs is not None:
        resolved = path.resolve()
        if not any(resolved.is_relative_to(d) for d in allowed_dirs):
            if not text.startswith(("./", "../", "/", "~")):
                return None  # a model name
            setting = "CORRAL_IMPORT_DIRS is not set" if not allowed_dirs else "it is outside CORRAL_IMPORT_DIRS"
            raise BadRequest(
                f"FROM {text!r} names a file on the server, which this server does not read ({setting}): "
                "upload the file as a blob (`corral create -f Modelfile` does) or use the `files` field"
            )
        path = resolved
    if path.is_file() or path.is_dir():
        return path
    if path.exists() or text.startswith(("./", "../", "/", "~")):
        raise BadRequest(
            f"FROM {text!r} is not a file; give a GGUF file, a safetensors model directory or a model name"
        )
    return None


def copy_model(store: Store, request: api.CopyRequest) -> None:
    source = ModelName.try_parse(request.source)
    if source is None:
        raise InvalidModelName(f'source "{request.source}" is invalid')
    destination = ModelName.try_parse(request.destination)
    if destination is None:
        raise InvalidModelName(f'destination "{request.destination}" is invalid')
    try:
        stored = store.get(source)
        if stored is None:
            raise FileNotFoundError(source.manifest_path)
        store.copy(stored, destination)
    except FileNotFoundError:  # absent, or deleted since it was looked up (a concurrent /api/delete)
        raise ModelNotFound(f'model "{request.source}" not found') from None


def delete_model(store: Store, request: api.DeleteRequest) -> list[Digest]:
    text = request.model or request.name
    name = ModelName.try_parse(text)
    if name is None:
        raise InvalidModelName(f'name "{text}" is invalid')
    try:
        stored = store.get(name)
        if stored is None:
            raise FileNotFoundError(name.manifest_path)
        return store.delete(stored)
    except FileNotFoundError:  # absent, or removed since it was looked up (a concurrent delete)
        raise ModelNotFound(f"model '{text}' not found") from None


async def upload_blob(store: Store, digest: Digest, body: AsyncIterator[bytes]) -> bool:
    """Store an uploaded blob if it is new; returns True when it was created. A body that does not hash to
    ``digest`` (or is cut short) raises and leaves nothing behind."""
    if store.blobs.exists(digest):
        async for _ in body:
            pass
        return False
    written = await store.blobs.write_async_stream(body, digest)
    return written.created


Transfer = Callable[[Callable[[api.ProgressResponse], None]], object]


def pull(store: Store, settings: Settings, request: api.PullRequest, cancel: threading.Event) -> Transfer:
    """``/api/pull``: the request is checked now (a bad name is a 400 before anything streams); the returned
    work pulls, reporting Ollama's progress lines. Setting ``cancel`` stops it, keeping partial downloads."""
    name = _transfer_name(request)
    options = registry_options(settings, insecure=request.insecure, cancel=cancel)
    return lambda report: pull_model(store, name, options, _wire_progress(report))


def push(store: Store, settings: Settings, request: api.PullRequest, cancel: threading.Event) -> Transfer:
    """``/api/push``: as ``pull``, for pushing a stored model to the registry its name points at."""
    name = _transfer_name(request)
    options = registry_options(settings, insecure=request.insecure, cancel=cancel)
    return lambda report: push_model(store, name, options, _wire_progress(report))


def _transfer_name(request: api.PullRequest) -> ModelName:
    text = request.model or request.name
    if not text:
        raise BadRequest("model is required")
    return ModelName.parse(text)


def _wire_progress(report: Callable[[api.ProgressResponse], None]) -> Callable[[TransferProgress], None]:
    def emit(event: TransferProgress) -> None:
        report(
            api.ProgressResponse(status=event.status, digest=event.digest, total=event.total, completed=event.completed)
        )

    return emit
