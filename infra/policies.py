"""The rules every rendered stack must pass, as pure functions over Kubernetes manifests (wire-form dicts).

A rule returns ``Violation``s naming itself and the resource (``Deployment corral/corral``). ``check`` runs all of
them over a whole stack; the CrossGuard pack (``infra/policy_pack``) runs the same functions inside the engine.
Numbers may arrive as floats (the engine passes protobuf numbers); every comparison tolerates that.

Rules: ``gpu-limit`` (a pod placed on GPU nodes asks for a GPU, GPU requests equal limits), ``gpu-toleration``,
``restricted`` (Pod Security Standards restricted, plus a read-only root filesystem and no service-account
token), ``probes``, ``image-pinned`` (no ``:latest``, no untagged image), ``volume-size`` (PVC >= catalog x 1.2),
``memory-fits-gpu`` (the server's estimate <= the GPU memory the stack declares), ``namespace-restricted``,
``autoscaler-replicas`` (no ``spec.replicas`` on a Deployment an HPA scales).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .model_server.layout import CATALOG_BYTES_ANNOTATION, GPU_MEMORY_ANNOTATION, MEMORY_ANNOTATION
from .quantity import QuantityError, parse_quantity

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
GPU_PREFIX = "nvidia.com/"
GPU_TAINT = "nvidia.com/gpu"
VOLUME_HEADROOM = Decimal("1.2")
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
    "image",
}


@dataclass(frozen=True)
class Violation:
    rule: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


Manifest = dict[str, Any]
ResourceRule = Callable[[Manifest], list[Violation]]


def resource_id(manifest: Manifest) -> str:
    meta = manifest.get("metadata") or {}
    namespace = meta.get("namespace")
    name = meta.get("name", "?")
    return f"{manifest.get('kind', '?')} {namespace}/{name}" if namespace else f"{manifest.get('kind', '?')} {name}"


def _pod(manifest: Manifest) -> dict[str, Any] | None:
    """The pod template (metadata + spec) of a workload, or the Pod itself; None for other kinds."""
    if manifest.get("kind") == "Pod":
        return manifest
    if manifest.get("kind") not in WORKLOAD_KINDS:
        return None
    template: dict[str, Any] = (manifest.get("spec") or {}).get("template") or {}
    return template


def _containers(pod: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    found = list(spec.get("containers") or [])
    return [*(spec.get("initContainers") or []), *found] if init else found


def _gpu_amounts(container: dict[str, Any], part: str) -> dict[str, Decimal]:
    values = (container.get("resources") or {}).get(part) or {}
    return {k: parse_quantity(v) for k, v in values.items() if k.startswith(GPU_PREFIX)}


def _annotation(pod: dict[str, Any], key: str) -> int:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    return int(float(value)) if value not in (None, "") else 0


def _targets_gpu_nodes(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    selector = spec.get("nodeSelector") or {}
    tolerates = any(str(t.get("key", "")).startswith(GPU_PREFIX) for t in spec.get("tolerations") or [])
    return (
        tolerates
        or any(k.startswith(GPU_PREFIX) for k in selector)
        or bool(spec.get("runtimeClassName"))
        or _annotation(pod, GPU_MEMORY_ANNOTATION) > 0
    )


def gpu_limit(manifest: Manifest) -> list[Violation]:
    pod = _pod(manifest)
    if pod is None:
        return []
    found: list[Violation] = []
    rid = resource_id(manifest)
    has_limit = False
    for container in _containers(pod):
        limits, requests = _gpu_amounts(container, "limits"), _gpu_amounts(container, "requests")
        has_limit = has_limit or any(v >= 1 for v in limits.values())
        for key, amount in requests.items():
            if limits.get(key) != amount:
                found.append(
                    Violation("gpu-limit", rid, f"container {container.get('name')}: {key} requests != limits")
                )
    if _targets_gpu_nodes(pod) and not has_limit:
        found.append(
            Violation("gpu-limit", rid, "pod is placed on GPU nodes but no container has an nvidia.com/gpu limit >= 1")
        )
    return found


def gpu_toleration(manifest: Manifest) -> list[Violation]:
    pod = _pod(manifest)
    if pod is None or not any(_gpu_amounts(c, "limits") for c in _containers(pod)):
        return []
    for toleration in (pod.get("spec") or {}).get("tolerations") or []:
        if toleration.get("key") == GPU_TAINT and toleration.get("effect") in (None, "", "NoSchedule"):
            return []
    return [Violation("gpu-toleration", resource_id(manifest), f"requests GPUs but does not tolerate {GPU_TAINT}")]


def restricted(manifest: Manifest) -> list[Violation]:
    pod = _pod(manifest)
    if pod is None:
        return []
    spec = pod.get("spec") or {}
    pod_context = spec.get("securityContext") or {}
    rid = resource_id(manifest)
    problems = [f"{key} is set" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken is not false")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume.get('name')} uses {', '.join(sorted(kinds - ALLOWED_VOLUMES))}")
    for container in _containers(pod):
        problems.extend(f"container {container.get('name')}: {p}" for p in _container_problems(container, pod_context))
    return [Violation("restricted", rid, p) for p in problems]


def _container_problems(container: dict[str, Any], pod_context: dict[str, Any]) -> list[str]:
    context = container.get("securityContext") or {}
    problems = []
    if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is not True:
        problems.append("runAsNonRoot is not true")
    if context.get("runAsUser", pod_context.get("runAsUser")) in (0, 0.0):
        problems.append("runAsUser is 0")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if context.get("privileged"):
        problems.append("privileged")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("capabilities.drop lacks ALL")
    if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
        problems.append("adds capabilities")
    seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append("seccompProfile is not RuntimeDefault")
    if context.get("readOnlyRootFilesystem") is not True:
        problems.append("root filesystem is writable")
    if any(port.get("hostPort") for port in container.get("ports") or []):
        problems.append("uses a hostPort")
    return problems


def probes(manifest: Manifest) -> list[Violation]:
    pod = _pod(manifest)
    if pod is None or manifest.get("kind") == "Job":
        return []
    return [
        Violation("probes", resource_id(manifest), f"container {c.get('name')} has no {probe}")
        for c in _containers(pod, init=False)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
        if not c.get(probe)
    ]


def image_pinned(manifest: Manifest) -> list[Violation]:
    pod = _pod(manifest)
    if pod is None:
        return []
    found = []
    for container in _containers(pod):
        image = str(container.get("image") or "")
        name = image.split("@", 1)[0]
        tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
        if "@sha256:" in image:
            continue
        if tag in ("", "latest"):
            why = "uses :latest" if tag else "has no tag or digest"
            found.append(Violation("image-pinned", resource_id(manifest), f"container {container.get('name')} {why}"))
    return found


def volume_size(manifest: Manifest) -> list[Violation]:
    if manifest.get("kind") != "PersistentVolumeClaim":
        return []
    catalog = _annotation(manifest, CATALOG_BYTES_ANNOTATION)
    if catalog == 0:
        return []
    asked = ((manifest.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    try:
        size = parse_quantity(asked) if asked is not None else Decimal(0)
    except QuantityError as exc:
        return [Violation("volume-size", resource_id(manifest), str(exc))]
    need = catalog * VOLUME_HEADROOM
    if size < need:
        return [
            Violation(
                "volume-size",
                resource_id(manifest),
                f"requests {asked} but the catalog's blobs ({catalog} bytes) x 1.2 need {int(need)} bytes",
            )
        ]
    return []


def memory_fits_gpu(manifest: Manifest) -> list[Violation]:
    pod = _pod(manifest)
    if pod is None or not any(_gpu_amounts(c, "limits") for c in _containers(pod)):
        return []
    estimate, gpu_memory = _annotation(pod, MEMORY_ANNOTATION), _annotation(pod, GPU_MEMORY_ANNOTATION)
    rid = resource_id(manifest)
    if gpu_memory == 0:
        return [Violation("memory-fits-gpu", rid, "requests GPUs but declares no GPU memory (gpu.memory_gib)")]
    if estimate > gpu_memory:
        return [
            Violation(
                "memory-fits-gpu",
                rid,
                f"memory estimate {estimate / 2**30:.2f} GiB exceeds the GPUs' {gpu_memory / 2**30:.2f} GiB",
            )
        ]
    return []


def namespace_restricted(manifest: Manifest) -> list[Violation]:
    if manifest.get("kind") != "Namespace":
        return []
    labels = (manifest.get("metadata") or {}).get("labels") or {}
    if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
        return [Violation("namespace-restricted", resource_id(manifest), "does not enforce Pod Security restricted")]
    return []


def autoscaler_replicas(manifests: Iterable[Manifest]) -> list[Violation]:
    """A Deployment scaled by an HPA must leave ``spec.replicas`` out (else every `pulumi up` fights the HPA)."""
    items = list(manifests)
    scaled = {
        ((m.get("metadata") or {}).get("namespace"), ((m.get("spec") or {}).get("scaleTargetRef") or {}).get("name"))
        for m in items
        if m.get("kind") == "HorizontalPodAutoscaler"
    }
    return [
        Violation("autoscaler-replicas", resource_id(m), "sets spec.replicas while an autoscaler scales it")
        for m in items
        if m.get("kind") == "Deployment"
        and ((m.get("metadata") or {}).get("namespace"), (m.get("metadata") or {}).get("name")) in scaled
        and (m.get("spec") or {}).get("replicas") is not None
    ]


RESOURCE_RULES: dict[str, tuple[str, ResourceRule]] = {
    "gpu-limit": ("GPU pods ask for a GPU; GPU requests equal limits", gpu_limit),
    "gpu-toleration": ("Pods that request GPUs tolerate the nvidia.com/gpu taint", gpu_toleration),
    "restricted": ("Pod Security restricted, read-only root, no service-account token", restricted),
    "probes": ("Every serving container has startup, readiness and liveness probes", probes),
    "image-pinned": ("No :latest or untagged images", image_pinned),
    "volume-size": ("The model PVC holds at least the catalog's blobs x 1.2", volume_size),
    "memory-fits-gpu": ("The server's memory estimate fits the declared GPU memory", memory_fits_gpu),
    "namespace-restricted": ("Namespaces enforce Pod Security restricted", namespace_restricted),
}


def check(manifests: Iterable[Manifest]) -> list[Violation]:
    """Every rule over every manifest of one stack, then the cross-resource rules."""
    items = list(manifests)
    found = [v for m in items for _description, rule in RESOURCE_RULES.values() for v in rule(m)]
    return found + autoscaler_replicas(items)
