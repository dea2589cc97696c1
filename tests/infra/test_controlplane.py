"""The real control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager, KWOK) on loopback.

One GPU node (``nvidia.com/gpu: 1``, tainted ``nvidia.com/gpu:NoSchedule``) and one CPU node. The scheduler's
own decisions are read back from the API: which node a pod is bound to, or why it is unschedulable. No
container runs anywhere (KWOK only reports pods as running).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import engine
from infra.controlplane import GPU_RESOURCE, GPU_TAINT_KEY, ControlPlane, FakeNode, KubeClient, KubeError
from infra.model_server.layout import labels
from infra.program import load_stack, program
from infra.settings import StackSettings

pytestmark = pytest.mark.slow

GPU_NODE = "gpu-node-0"
# Enough for the gpu stack's replicas (one GPU each); a stack asking for more per pod cannot fit anywhere.
GPU_CAPACITY = 4
CPU_NODE = "cpu-node-0"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
WAIT = 120.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with ControlPlane.start(tmp_path_factory.mktemp("controlplane")) as plane:
        plane.add_node(FakeNode(GPU_NODE, gpus=GPU_CAPACITY))
        plane.add_node(FakeNode(CPU_NODE))
        yield plane
    assert all(not process.running() for process in plane.processes), "a control-plane process outlived stop()"


def _namespace(client: KubeClient, name: str) -> str:
    client.create(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}},
    )
    return name


def _restricted_container(gpus: int) -> dict[str, Any]:
    resources = {"limits": {GPU_RESOURCE: str(gpus), "cpu": "1", "memory": "1Gi"}} if gpus else {}
    return {
        "name": "server",
        "image": "registry.example/corral:0.1.0",
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def _deployment(name: str, gpus: int, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    pod_spec: dict[str, Any] = {"containers": [_restricted_container(gpus)]}
    if gpus:
        pod_spec["tolerations"] = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def _pods(client: KubeClient, namespace: str, app: str, count: int, condition: Any) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        pods = client.items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"app={app}")
        return pods if len(pods) >= count and all(condition(p) for p in pods) else None

    return client.wait_for(probe, WAIT, f"{count} pod(s) of {app} in {namespace}")


def _scheduled(pod: dict[str, Any]) -> bool:
    return bool(pod["spec"].get("nodeName"))


def _unschedulable(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conditions)


def test_nodes_report_their_gpus_and_taint(cluster: ControlPlane) -> None:
    gpu = cluster.client.get(f"/api/v1/nodes/{GPU_NODE}")
    cpu = cluster.client.get(f"/api/v1/nodes/{CPU_NODE}")
    assert gpu["status"]["allocatable"][GPU_RESOURCE] == str(GPU_CAPACITY)
    assert GPU_RESOURCE not in cpu["status"]["allocatable"]
    assert [t["key"] for t in gpu["spec"]["taints"]] == [GPU_TAINT_KEY]


def test_pod_security_restricted_rejects_a_pod_without_the_hardening(cluster: ControlPlane) -> None:
    """Fine under "baseline" (no privilege asked for), refused under "restricted": no non-root, no seccomp, no
    capability drop."""
    namespace = _namespace(cluster.client, "psa-check")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "c", "image": "registry.example/x:1"}]},
    }
    with pytest.raises(KubeError) as rejected:
        cluster.client.create(f"/api/v1/namespaces/{namespace}/pods", pod)
    assert rejected.value.status == 403
    assert 'violates PodSecurity "restricted' in str(rejected.value)


def test_scheduler_binds_gpu_pods_to_the_gpu_node_only(cluster: ControlPlane) -> None:
    namespace = _namespace(cluster.client, "gpu-fit")
    cluster.client.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", _deployment("llm", gpus=1))
    pods = _pods(cluster.client, namespace, "llm", 1, _scheduled)
    assert [p["spec"]["nodeName"] for p in pods] == [GPU_NODE]


def test_scheduler_reports_too_many_gpus_as_unschedulable(cluster: ControlPlane) -> None:
    namespace = _namespace(cluster.client, "gpu-overcommit")
    cluster.client.create(
        f"/apis/apps/v1/namespaces/{namespace}/deployments", _deployment("big", gpus=GPU_CAPACITY + 1)
    )
    pods = _pods(cluster.client, namespace, "big", 1, _unschedulable)
    message = next(c["message"] for c in pods[0]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert f"Insufficient {GPU_RESOURCE}" in message
    assert not pods[0]["spec"].get("nodeName")


def _provide_cluster_parts(client: KubeClient, settings: StackSettings, suffix: str) -> None:
    """What a GPU cluster has before Corral arrives: the GPU RuntimeClass (the NVIDIA operator registers it) and
    storage for the model claim (here a pre-provisioned PersistentVolume of the stack's class and access mode)."""
    if settings.gpu.runtime_class:
        try:
            client.create(
                "/apis/node.k8s.io/v1/runtimeclasses",
                {
                    "apiVersion": "node.k8s.io/v1",
                    "kind": "RuntimeClass",
                    "metadata": {"name": settings.gpu.runtime_class},
                    "handler": settings.gpu.runtime_class,
                },
            )
        except KubeError as exc:
            if exc.status != 409:
                raise
    volume: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"models-{suffix}"},
        "spec": {
            "capacity": {"storage": "1Ti"},
            "accessModes": [settings.storage.access_mode],
            "persistentVolumeReclaimPolicy": "Retain",
            "nfs": {"server": "127.0.0.1", "path": f"/models-{suffix}"},
        },
    }
    if settings.storage.storage_class:
        volume["spec"]["storageClassName"] = settings.storage.storage_class
    client.create("/api/v1/persistentvolumes", volume)


def _server_pods(client: KubeClient, settings: StackSettings, count: int, condition: Any) -> list[dict[str, Any]]:
    selector = ",".join(f"{key}={value}" for key, value in labels(settings.name).items())

    def probe() -> list[dict[str, Any]] | None:
        pods = client.items(f"/api/v1/namespaces/{settings.namespace}/pods", labelSelector=selector)
        return pods if len(pods) >= count and all(condition(p) for p in pods) else None

    return client.wait_for(probe, WAIT, f"{count} server pod(s) in {settings.namespace}")


def test_pulumi_up_of_the_gpu_stack_puts_the_server_pods_on_the_gpu_node(cluster: ControlPlane, tmp_path: Path) -> None:
    settings = load_stack("gpu")
    _provide_cluster_parts(cluster.client, settings, "gpu")
    deployed = engine.up("gpu", cluster.kubeconfig, program=lambda: program(settings), workdir=tmp_path)

    client, namespace = cluster.client, settings.namespace
    assert (
        client.get(f"/api/v1/namespaces/{namespace}")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "restricted"
    )
    deployment = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{settings.name}")
    assert deployment["status"].get("readyReplicas") == settings.replicas  # pulumi up awaited the rollout
    claim = client.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{deployed.outputs['pvc_name']}")
    assert claim["status"]["phase"] == "Bound"
    # Admitted under Pod Security "restricted", created by the controller, bound by the scheduler: GPU node only.
    pods = _server_pods(client, settings, settings.replicas, _scheduled)
    assert sorted(p["spec"]["nodeName"] for p in pods) == [GPU_NODE] * settings.replicas
    assert deployed.outputs["replicas"] == settings.replicas
    assert deployed.changes.get("create", 0) >= 6


def test_pulumi_up_asking_for_more_gpus_than_exist_leaves_pods_unschedulable(
    cluster: ControlPlane, tmp_path: Path
) -> None:
    base = load_stack("gpu")
    settings = base.model_copy(
        update={
            "name": "overcommit",
            "namespace": "corral-overcommit",
            "replicas": 1,
            "gpu": base.gpu.model_copy(update={"count": GPU_CAPACITY + 1}),
        }
    )
    _provide_cluster_parts(cluster.client, settings, "overcommit")
    # Nothing can become ready, so the provider must not wait for it.
    engine.up("gpu", cluster.kubeconfig, program=lambda: program(settings), workdir=tmp_path, skip_await=True)

    pods = _server_pods(cluster.client, settings, 1, _unschedulable)
    message = next(c["message"] for c in pods[0]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert f"Insufficient {GPU_RESOURCE}" in message
