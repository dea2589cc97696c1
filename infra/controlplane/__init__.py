"""A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver, kube-scheduler,
kube-controller-manager and KWOK (fake nodes whose pods are marked running without running anything).

Usage::

    with ControlPlane.start(workdir) as cluster:
        cluster.add_node(FakeNode("gpu-0", gpus=1))
        cluster.client.list("/api/v1/pods")

No container ever runs: KWOK only plays the kubelet's part in the API (node heartbeats, pod phases).
"""

from infra.controlplane.client import KubeClient, KubeError
from infra.controlplane.cluster import ControlPlane, ControlPlaneError
from infra.controlplane.nodes import GPU_RESOURCE, GPU_TAINT_KEY, FakeNode

__all__ = ["GPU_RESOURCE", "GPU_TAINT_KEY", "ControlPlane", "ControlPlaneError", "FakeNode", "KubeClient", "KubeError"]
