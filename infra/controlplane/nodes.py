"""Fake nodes for KWOK: Node objects that KWOK adopts and keeps Ready, with optional GPUs and the GPU taint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT_KEY = "nvidia.com/gpu"
# The annotation KWOK's --manage-nodes-with-annotation-selector is told to look for.
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


@dataclass(frozen=True)
class FakeNode:
    """A node's name, capacity and labels. ``gpus > 0`` adds ``nvidia.com/gpu`` capacity and the GPU taint
    (``nvidia.com/gpu:NoSchedule``, as GPU node pools are commonly tainted)."""

    name: str
    gpus: int = 0
    cpu: str = "16"
    memory: str = "64Gi"
    pods: int = 110
    labels: tuple[tuple[str, str], ...] = ()

    def manifest(self) -> dict[str, Any]:
        """The Node object to create through the API."""
        capacity: dict[str, str] = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods)}
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            **dict(self.labels),
        }
        spec: dict[str, Any] = {}
        if self.gpus > 0:
            capacity[GPU_RESOURCE] = str(self.gpus)
            labels["nvidia.com/gpu.present"] = "true"
            spec["taints"] = [{"key": GPU_TAINT_KEY, "value": "present", "effect": "NoSchedule"}]
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels, "annotations": {KWOK_ANNOTATION: "fake"}},
            "spec": spec,
            "status": {"capacity": capacity, "allocatable": capacity},
        }
