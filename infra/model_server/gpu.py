"""The optional NVIDIA device plugin (a Helm release). Off by default: cluster add-ons usually belong to a
platform stack, and a GPU Operator already ships the plugin."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.settings import GpuSettings

DEVICE_PLUGIN_REPO = "https://nvidia.github.io/k8s-device-plugin"


def device_plugin(name: str, gpu: GpuSettings, parent: pulumi.Resource) -> k8s.helm.v3.Release:
    """The plugin's DaemonSet, tolerating the GPU taint and placed on the GPU pool's nodes."""
    values: dict[str, object] = {
        "tolerations": [{"key": gpu.taint_key, "operator": "Exists", "effect": "NoSchedule"}],
    }
    if gpu.node_selector:
        values["nodeSelector"] = dict(gpu.node_selector)
    return k8s.helm.v3.Release(
        f"{name}-nvidia-device-plugin",
        k8s.helm.v3.ReleaseArgs(
            chart="nvidia-device-plugin",
            version=gpu.device_plugin_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=DEVICE_PLUGIN_REPO),
            namespace="nvidia-device-plugin",
            create_namespace=True,
            values=values,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
