"""The CrossGuard policy pack: ``infra.policies`` wrapped as pulumi-policy policies (``policies()``), all
mandatory. ``__main__.py`` only builds the ``PolicyPack``; constructing one starts the analyzer server and blocks,
so nothing else may construct it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policies import RESOURCE_RULES, Manifest, ResourceRule, autoscaler_replicas

PACK_NAME = "corral"


def manifest_of(resource_type: str, props: Mapping[str, Any]) -> Manifest | None:
    """A resource's properties as a manifest (``kind`` from the type token when the props lack it); None for
    what is not a Kubernetes object."""
    if not resource_type.startswith("kubernetes:") or resource_type.startswith("kubernetes:helm.sh"):
        return None
    manifest = dict(props)
    manifest.setdefault("kind", resource_type.rsplit(":", 1)[-1])
    return manifest


def _resource_policy(name: str, description: str, rule: ResourceRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        manifest = manifest_of(args.resource_type, args.props)
        if manifest is not None:
            for violation in rule(manifest):
                report_violation(str(violation), None)

    return ResourceValidationPolicy(name, description, validate, EnforcementLevel.MANDATORY)


def _validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    manifests = [m for r in args.resources if (m := manifest_of(r.resource_type, r.props)) is not None]
    for violation in autoscaler_replicas(manifests):
        report_violation(str(violation), None)


def policies() -> list[Policy]:
    found: list[Policy] = [
        _resource_policy(name, description, rule) for name, (description, rule) in RESOURCE_RULES.items()
    ]
    found.append(
        StackValidationPolicy(
            "autoscaler-replicas",
            "No spec.replicas on a Deployment an autoscaler scales",
            _validate_stack,
            EnforcementLevel.MANDATORY,
        )
    )
    return found
