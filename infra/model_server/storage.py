"""The model volume (a PVC sized from the catalog) and the ConfigMap holding the catalog and its Modelfiles."""

from __future__ import annotations

from typing import Any

from .args import ModelServerArgs
from .layout import CATALOG_BYTES_ANNOTATION, labels


def claim_spec(args: ModelServerArgs) -> dict[str, Any]:
    storage = args.settings.storage
    spec: dict[str, Any] = {
        "accessModes": [storage.access_mode],
        "resources": {"requests": {"storage": args.volume_size}},
    }
    if storage.storage_class:
        spec["storageClassName"] = storage.storage_class
    return spec


def claim_metadata(args: ModelServerArgs) -> dict[str, Any]:
    s = args.settings
    return {
        "name": f"{s.name}-models",
        "namespace": s.namespace,
        "labels": labels(s.name),
        # Read by the volume-size policy: the catalog's blob bytes the claim must hold (x 1.2).
        "annotations": {CATALOG_BYTES_ANNOTATION: str(args.catalog.total_blob_bytes)},
    }


def catalog_metadata(args: ModelServerArgs) -> dict[str, Any]:
    s = args.settings
    return {"name": f"{s.name}-catalog", "namespace": s.namespace, "labels": labels(s.name)}
