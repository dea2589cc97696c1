"""Schema validation of rendered manifests with kubernetes-validate, strict (unknown fields are errors), against
every Kubernetes minor version Corral supports.

Supported: 1.30 to 1.37. 1.30 is the oldest minor where every field the program emits is on by default (the
``preStop`` sleep action); 1.37 is the newest schema set kubernetes-validate ships. Custom resources (for
example a ``ServiceMonitor``) have no schema there and are reported as skipped, not as passing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

SUPPORTED_MINORS: tuple[str, ...] = tuple(f"1.{minor}" for minor in range(30, 38))


@dataclass(frozen=True)
class SchemaFinding:
    """One manifest that failed (``error``) or could not be checked (``skipped``) for one Kubernetes version."""

    resource: str
    version: str
    message: str
    skipped: bool = False

    def __str__(self) -> str:
        verdict = "not validated" if self.skipped else "invalid"
        return f"{self.resource} {verdict} for Kubernetes {self.version}: {self.message}"


def resource_name(manifest: dict[str, Any]) -> str:
    """``Kind/namespace/name`` (``Kind/name`` for cluster-scoped objects)."""
    metadata = manifest.get("metadata") or {}
    parts = [manifest.get("kind", "?"), metadata.get("namespace"), metadata.get("name", "?")]
    return "/".join(str(part) for part in parts if part)


def validate_manifests(
    manifests: Iterable[dict[str, Any]], versions: Sequence[str] = SUPPORTED_MINORS
) -> list[SchemaFinding]:
    """Validate every manifest strictly for each version; returns the failures and the skipped custom resources
    (each custom resource once, not once per version)."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    findings: list[SchemaFinding] = []
    for manifest in manifests:
        name = resource_name(manifest)
        for version in versions:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except SchemaNotFoundError:
                findings.append(SchemaFinding(name, version, "no schema for this kind (custom resource)", True))
                break
            except ValidationError as exc:
                where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
                findings.append(SchemaFinding(name, version, f"at {where}: {exc.message}"))
    return findings
