"""Each policy on a passing and a failing resource; the whole set on both stacks and on deliberately broken ones;
the CrossGuard wrappers on the same resources."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra import policies
from infra.policy_pack import policies as pack_policies
from infra.program import load_stack, settings_from_config
from infra.settings import StackSettings

from .graph import RecordingMocks, render

Manifest = dict[str, Any]


def of_kind(manifests: list[Manifest], kind: str) -> Manifest:
    return copy.deepcopy(next(m for m in manifests if m["kind"] == kind))


@pytest.fixture
def gpu(mocks: RecordingMocks) -> list[Manifest]:
    return render(mocks, load_stack("gpu"))


def server(deployment: Manifest) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def spec(deployment: Manifest) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_both_stacks_pass_every_rule(mocks: RecordingMocks) -> None:
    assert policies.check(render(mocks, load_stack("gpu"))) == []


def test_dev_stack_passes_every_rule(mocks: RecordingMocks) -> None:
    assert policies.check(render(mocks, load_stack("dev"))) == []


def _no_gpu(d: Manifest) -> None:
    for part in ("limits", "requests"):
        server(d)["resources"][part].pop("nvidia.com/gpu")


def _unequal_gpu(d: Manifest) -> None:
    server(d)["resources"]["requests"]["nvidia.com/gpu"] = "2"


def _no_toleration(d: Manifest) -> None:
    spec(d).pop("tolerations")


def _root(d: Manifest) -> None:
    server(d)["securityContext"]["runAsUser"] = 0.0


def _escalation(d: Manifest) -> None:
    spec(d)["initContainers"][0]["securityContext"]["allowPrivilegeEscalation"] = True


def _host_path(d: Manifest) -> None:
    spec(d)["volumes"].append({"name": "host", "hostPath": {"path": "/var"}})


def _token(d: Manifest) -> None:
    spec(d)["automountServiceAccountToken"] = True


def _no_probe(d: Manifest) -> None:
    server(d).pop("livenessProbe")


def _latest(d: Manifest) -> None:
    server(d)["image"] = "localhost/corral:latest"


def _untagged(d: Manifest) -> None:
    spec(d)["initContainers"][0]["image"] = "registry.example.com:5000/corral"


def _too_big(d: Manifest) -> None:
    d["spec"]["template"]["metadata"]["annotations"]["corral.dev/memory-estimate-bytes"] = str(100 * 2**30)


def _undeclared(d: Manifest) -> None:
    d["spec"]["template"]["metadata"]["annotations"]["corral.dev/gpu-memory-bytes"] = "0"


@pytest.mark.parametrize(
    ("rule", "breaks", "message"),
    [
        (policies.gpu_limit, _no_gpu, "no container has an nvidia.com/gpu limit"),
        (policies.gpu_limit, _unequal_gpu, "container server: nvidia.com/gpu requests != limits"),
        (policies.gpu_toleration, _no_toleration, "does not tolerate nvidia.com/gpu"),
        (policies.restricted, _root, "container server: runAsUser is 0"),
        (policies.restricted, _escalation, "container catalog-apply: allowPrivilegeEscalation is not false"),
        (policies.restricted, _host_path, "volume host uses hostPath"),
        (policies.restricted, _token, "automountServiceAccountToken is not false"),
        (policies.probes, _no_probe, "container server has no livenessProbe"),
        (policies.image_pinned, _latest, "container server uses :latest"),
        (policies.image_pinned, _untagged, "container catalog-apply has no tag or digest"),
        (policies.memory_fits_gpu, _too_big, "memory estimate 100.00 GiB exceeds the GPUs' 24.00 GiB"),
        (policies.memory_fits_gpu, _undeclared, "declares no GPU memory"),
    ],
)
def test_deployment_rule_passes_then_fails(
    gpu: list[Manifest],
    rule: Callable[[Manifest], list[policies.Violation]],
    breaks: Callable[[Manifest], None],
    message: str,
) -> None:
    deployment = of_kind(gpu, "Deployment")
    assert rule(deployment) == []
    breaks(deployment)
    (violation,) = rule(deployment)
    assert violation.resource == "Deployment corral/corral"
    assert message in violation.message
    assert str(violation).startswith(f"[{violation.rule}] Deployment corral/corral: ")


def test_pinned_by_digest_passes(gpu: list[Manifest]) -> None:
    deployment = of_kind(gpu, "Deployment")
    server(deployment)["image"] = "localhost/corral@sha256:" + "a" * 64
    assert policies.image_pinned(deployment) == []


def test_volume_size_rule(gpu: list[Manifest]) -> None:
    claim = of_kind(gpu, "PersistentVolumeClaim")
    assert policies.volume_size(claim) == []
    claim["spec"]["resources"]["requests"]["storage"] = "100Mi"
    (violation,) = policies.volume_size(claim)
    assert violation.rule == "volume-size" and violation.resource == "PersistentVolumeClaim corral/corral-models"


def test_namespace_rule(gpu: list[Manifest]) -> None:
    namespace = of_kind(gpu, "Namespace")
    assert policies.namespace_restricted(namespace) == []
    namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"
    (violation,) = policies.namespace_restricted(namespace)
    assert violation.resource == "Namespace corral"


def test_autoscaler_replicas_rule(mocks: RecordingMocks) -> None:
    manifests = render(
        mocks,
        settings_from_config(
            {
                "image": "localhost/corral:0.1.0",
                "storage": {"access_mode": "ReadWriteMany"},
                "autoscaling": {"min_replicas": 1, "max_replicas": 3},
            },
            "test",
        ),
    )
    assert policies.autoscaler_replicas(manifests) == []
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    deployment["spec"]["replicas"] = 2.0
    (violation,) = policies.autoscaler_replicas(manifests)
    assert violation.rule == "autoscaler-replicas" and violation.resource == "Deployment corral/corral"


@pytest.mark.parametrize(
    ("change", "rule", "resource"),
    [
        ({"gpu": {"count": 0}}, "gpu-limit", "Deployment corral/corral"),
        (
            {"storage": {"size": "100Mi", "access_mode": "ReadWriteMany"}},
            "volume-size",
            "PersistentVolumeClaim corral/corral-models",
        ),
        ({"image": "registry.example.com/corral:latest"}, "image-pinned", "Deployment corral/corral"),
        ({"gpu": {"count": 1, "memory_gib": 0.5}}, "memory-fits-gpu", "Deployment corral/corral"),
    ],
)
def test_broken_gpu_stacks_fail_naming_rule_and_resource(
    mocks: RecordingMocks, change: dict[str, Any], rule: str, resource: str
) -> None:
    base = load_stack("gpu").model_dump()
    for key, value in change.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    violations = policies.check(render(mocks, StackSettings.model_validate(base)))
    assert violations
    assert {(v.rule, v.resource) for v in violations} == {(rule, resource)}


def _args(manifest: Manifest, typ: str) -> ResourceValidationArgs:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    return ResourceValidationArgs(typ, manifest, f"urn:{typ}", manifest["metadata"]["name"], options, None)


def test_pack_wraps_the_same_rules(gpu: list[Manifest]) -> None:
    pack = {p.name: p for p in pack_policies()}
    assert set(pack) == {*policies.RESOURCE_RULES, "autoscaler-replicas"}
    deployment = of_kind(gpu, "Deployment")
    _latest(deployment)
    image_policy = pack["image-pinned"]
    assert isinstance(image_policy, ResourceValidationPolicy)
    reported: list[str] = []
    image_policy.validate(_args(deployment, "kubernetes:apps/v1:Deployment"), lambda m, urn=None: reported.append(m))  # type: ignore[arg-type]
    assert reported == ["[image-pinned] Deployment corral/corral: container server uses :latest"]
    reported.clear()
    deployment.pop("kind")  # props may lack kind: it comes from the type token
    pack["probes"].validate(_args(deployment, "kubernetes:apps/v1:Deployment"), lambda m, urn=None: reported.append(m))  # type: ignore[union-attr,arg-type]
    assert reported == []


def test_pack_stack_policy_sees_all_resources(mocks: RecordingMocks) -> None:
    manifests = render(
        mocks,
        settings_from_config(
            {"image": "a/b:1", "storage": {"access_mode": "ReadWriteMany"}, "autoscaling": {"max_replicas": 3}},
            "test",
        ),
    )
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    deployment["spec"]["replicas"] = 3
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    resources = [
        PolicyResource(
            f"kubernetes:x/v1:{m['kind']}", m, f"urn:{m['kind']}", m["metadata"]["name"], options, None, None, [], {}
        )
        for m in manifests
    ]
    stack_policy = next(p for p in pack_policies() if p.name == "autoscaler-replicas")
    assert isinstance(stack_policy, StackValidationPolicy)
    reported: list[str] = []
    stack_policy.validate(StackValidationArgs(resources), lambda m, urn=None: reported.append(m))  # type: ignore[arg-type]
    assert reported == [
        "[autoscaler-replicas] Deployment corral/corral: sets spec.replicas while an autoscaler scales it"
    ]
