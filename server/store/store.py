"""The on-disk model store, in Ollama's layout::

    <root>/manifests/<host>/<namespace>/<model>/<tag>    manifest JSON
    <root>/blobs/sha256-<hex>                            content-addressed layers and config

Manifests are replaced atomically (temp file in the same directory, fsync, rename), so a reader sees the old
manifest or the new one, never half of one. Operations that remove blobs take an exclusive lock on
``<root>/.corral.lock``; operations that add blobs and manifests take a shared one. Two processes on the same
volume (two pods applying a catalog) can therefore create at the same time, but a prune never deletes a blob
that a create in progress is about to reference.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from server.store.blobs import BlobStore, Digest, locked_temp, remove_if_unlocked
from server.store.manifest import Manifest, MediaType, ModelConfig
from server.store.names import ModelName

log = logging.getLogger(__name__)

LOCK_FILE = ".corral.lock"
UNREFERENCED_GRACE_SECONDS = 3600.0


@dataclass(frozen=True)
class StoredManifest:
    """A manifest as found on disk: its name (with the stored casing), parsed content, digest and mtime."""

    name: ModelName
    manifest: Manifest
    digest: str
    modified: float

    @property
    def modified_at(self) -> datetime:
        return datetime.fromtimestamp(self.modified).astimezone()


@dataclass(frozen=True)
class ModelContent:
    """The readable layers of a model, loaded from its blobs."""

    config: ModelConfig
    model_path: Path | None
    parent_model: str
    template: str
    system: str
    parameters: dict[str, Any]
    messages: list[dict[str, Any]]
    licenses: list[str]
    adapter_paths: list[Path]
    projector_paths: list[Path]


class Store:
    """A model store rooted at ``OLLAMA_MODELS``."""

    def __init__(self, root: Path, *, noprune: bool = False) -> None:
        self.root = root
        self.noprune = noprune
        self.blobs = BlobStore(root / "blobs")
        self.manifests = root / "manifests"

    # -- locking -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the store lock. flock locks are per open file, so threads of one process exclude each other
        exactly as separate processes do."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -- manifests ---------------------------------------------------------------------------------------

    def resolve(self, name: ModelName) -> ModelName | None:
        """The stored spelling of ``name`` (lookups are case-insensitive), or None when it is not stored."""
        exact = self.manifests / name.manifest_path
        if exact.is_file():
            return name
        parts: list[str] = []
        directory = self.manifests
        for wanted in name.manifest_path.parts:
            match = _find_casefold(directory, wanted)
            if match is None:
                return None
            parts.append(match)
            directory = directory / match
        if not directory.is_file():
            return None
        host, namespace, model, tag = parts
        return ModelName(host, namespace, model, tag, scheme=name.scheme)

    def get(self, name: ModelName) -> StoredManifest | None:
        stored = self.resolve(name)
        if stored is None:
            return None
        return self._read(stored)

    def all(self) -> list[StoredManifest]:
        """Every readable manifest; unreadable ones are logged and skipped, as Ollama does."""
        found: list[StoredManifest] = []
        if not self.manifests.is_dir():
            return found
        for path in self.manifests.glob("*/*/*/*"):
            if not path.is_file() or path.name.startswith("."):
                continue
            host, namespace, model, tag = path.relative_to(self.manifests).parts
            name = ModelName.try_parse(f"{host}/{namespace}/{model}:{tag}")
            if name is None:
                log.warning("skipping manifest with an invalid name: %s", path)
                continue
            with contextlib.suppress(FileNotFoundError):
                try:
                    found.append(self._read(name))
                except ValueError as exc:
                    log.warning("skipping unreadable manifest %s: %s", path, exc)
        return found

    def write_manifest(self, name: ModelName, manifest: Manifest) -> str:
        """Atomically write the manifest for ``name`` (reusing the stored casing); returns its digest.

        An identical manifest is left untouched (its mtime, and so ``modified_at``, stays). Every blob it names
        must already be in the store; the caller holds the shared lock.
        """
        return self.write_manifest_bytes(name, manifest.encode())

    def write_manifest_bytes(self, name: ModelName, data: bytes) -> str:
        """``write_manifest`` for bytes kept exactly as they are (a pulled manifest is stored as the registry
        served it, so its digest is the registry's). ``data`` must decode as a manifest."""
        missing = [d for d in Manifest.decode(data).digests() if not self.blobs.exists(d)]
        if missing:
            raise FileNotFoundError(f"blob {missing[0]} is not in the store")
        target_name = self.resolve(name) or name
        path = self.manifests / target_name.manifest_path
        if not (path.is_file() and path.read_bytes() == data):
            _atomic_write(path, data)
        return Digest.from_bytes(data).hex

    def copy(self, source: StoredManifest, destination: ModelName) -> None:
        """Copy a manifest's bytes to a new name (blobs are shared, as Ollama does)."""
        with self.lock(exclusive=False):
            data = (self.manifests / source.name.manifest_path).read_bytes()
            target_name = self.resolve(destination) or destination
            _atomic_write(self.manifests / target_name.manifest_path, data)

    def delete(self, stored: StoredManifest) -> list[Digest]:
        """Remove a manifest, its now-empty directories, and (unless noprune) the blobs no other manifest uses.
        Returns the blobs removed."""
        with self.lock(exclusive=True):
            path = self.manifests / stored.name.manifest_path
            path.unlink()
            _remove_empty_parents(path.parent, self.manifests)
            if self.noprune:
                return []
            in_use = self._referenced()
            removed = []
            for digest in sorted(stored.manifest.digests() - in_use):
                self.blobs.delete(digest)
                removed.append(digest)
            return removed

    def remove_unreferenced(self, digests: set[Digest]) -> list[Digest]:
        """Delete those of ``digests`` that no manifest references any more (unless noprune): the layers a
        re-pull replaced. Returns the blobs removed."""
        if self.noprune:
            return []
        with self.lock(exclusive=True):
            unused = sorted(digests - self._referenced())
            for digest in unused:
                self.blobs.delete(digest)
            return unused

    def prune(self) -> list[Path]:
        """Start-up clean-up: stale temp files always; unless noprune, blobs no manifest references that are
        older than an hour (a younger one may be an upload whose create has not come yet) and empty manifest
        directories."""
        with self.lock(exclusive=True):
            removed = self.blobs.prune_temp()
            removed += _prune_temp_manifests(self.manifests)
            if self.noprune:
                return removed
            in_use = self._referenced()
            now = time.time()
            for digest in self.blobs.all():
                if digest in in_use:
                    continue
                path = self.blobs.path(digest)
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime >= UNREFERENCED_GRACE_SECONDS:
                        path.unlink()
                        removed.append(path)
            if self.manifests.is_dir():
                for directory in sorted(self.manifests.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                    if directory != self.manifests:
                        with contextlib.suppress(OSError):
                            directory.rmdir()
            return removed

    # -- contents ----------------------------------------------------------------------------------------

    def config(self, stored: StoredManifest) -> ModelConfig:
        try:
            return ModelConfig.decode(self.blobs.read_bytes(stored.manifest.config.digest))
        except FileNotFoundError:
            return ModelConfig()

    def content(self, stored: StoredManifest) -> ModelContent:
        """Read the text layers of a model (template, system, params, messages, licenses)."""
        manifest = stored.manifest
        model_layer = manifest.find(MediaType.MODEL)
        template_layer = manifest.find(MediaType.TEMPLATE) or manifest.find(MediaType.PROMPT)
        params = self._json_layer(manifest, MediaType.PARAMS, {})
        messages = self._json_layer(manifest, MediaType.MESSAGES, [])
        return ModelContent(
            config=self.config(stored),
            model_path=self.blobs.path(model_layer.digest) if model_layer else None,
            parent_model=model_layer.from_ if model_layer else "",
            template=self._text(template_layer.digest) if template_layer else "",
            system=self._text_of(manifest, MediaType.SYSTEM),
            parameters=params if isinstance(params, dict) else {},
            messages=messages if isinstance(messages, list) else [],
            licenses=[self._text(layer.digest) for layer in manifest.find_all(MediaType.LICENSE)],
            adapter_paths=[self.blobs.path(layer.digest) for layer in manifest.find_all(MediaType.ADAPTER)],
            projector_paths=[self.blobs.path(layer.digest) for layer in manifest.find_all(MediaType.PROJECTOR)],
        )

    def _text_of(self, manifest: Manifest, media_type: str) -> str:
        layer = manifest.find(media_type)
        return self._text(layer.digest) if layer else ""

    def _text(self, digest: Digest) -> str:
        try:
            return self.blobs.read_bytes(digest).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _json_layer(self, manifest: Manifest, media_type: str, default: Any) -> Any:
        layer = manifest.find(media_type)
        if layer is None:
            return default
        try:
            return json.loads(self.blobs.read_bytes(layer.digest))
        except (FileNotFoundError, ValueError):
            return default

    def _read(self, name: ModelName) -> StoredManifest:
        path = self.manifests / name.manifest_path
        data = path.read_bytes()
        return StoredManifest(
            name=name,
            manifest=Manifest.decode(data),
            digest=Digest.from_bytes(data).hex,
            modified=path.stat().st_mtime,
        )

    def _referenced(self) -> set[Digest]:
        digests: set[Digest] = set()
        for stored in self.all():
            digests |= stored.manifest.digests()
        return digests


def _find_casefold(directory: Path, wanted: str) -> str | None:
    if (directory / wanted).exists():
        return wanted
    if not directory.is_dir():
        return None
    folded = wanted.casefold()
    return next((entry.name for entry in directory.iterdir() if entry.name.casefold() == folded), None)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = locked_temp(path.parent)  # the lock marks the temp file as live for prune
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _prune_temp_manifests(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    removed = []
    for path in root.glob("**/.tmp-*"):
        if remove_if_unlocked(path):
            removed.append(path)
    return removed
