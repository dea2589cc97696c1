"""Helpers for tests that create models: a progress recorder, a create from a safetensors directory, and where a
stored model's weights blob is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.store.convert import model_files
from server.store.create import CreateSpec, create_model
from server.store.manifest import MediaType
from server.store.names import ModelName
from server.store.store import Store


class Statuses(list[str]):
    """A progress callback that records every status."""

    def __call__(self, status: str) -> None:
        self.append(status)


def create_from_directory(
    store: Store, name: str, directory: Path, progress: Callable[[str], None], **extra: Any
) -> str:
    """Create ``name`` from a model directory's files, uploaded as blobs first (what ``corral create`` does); returns
    the manifest digest (hex)."""
    files = {f.relative_to(directory).as_posix(): store.blobs.import_file(f).digest for f in model_files(directory)}
    return create_model(store, CreateSpec(name=ModelName.parse(name), files=files, **extra), progress)


def model_blob(store: Store, name: str) -> Path:
    """The weights blob of the stored model ``name``."""
    stored = store.get(ModelName.parse(name))
    assert stored is not None
    layer = stored.manifest.find(MediaType.MODEL)
    assert layer is not None
    return store.blobs.path(layer.digest)
