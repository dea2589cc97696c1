"""Scaling and disruption: an optional HorizontalPodAutoscaler on a Corral metric, and the PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

from infra.settings import AutoscalingSettings

from .layout import labels


def hpa_spec(name: str, scaling: AutoscalingSettings) -> dict[str, Any]:
    """A Pods metric averaged per replica (through a custom-metrics adapter). Scale up one pod at a time (a new
    replica needs a GPU and a model load), scale down slowly (each scale-down drops a loaded model)."""
    target = f"{scaling.target:g}"
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "metrics": [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": scaling.metric},
                    "target": {"type": "AverageValue", "averageValue": target},
                },
            }
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 60,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": scaling.scale_down_window_seconds,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
            },
        },
    }


def pdb_spec(name: str) -> dict[str, Any]:
    """One pod down at a time (with one replica: drains are never blocked); a pod stuck loading never blocks a
    node drain."""
    return {
        "maxUnavailable": 1,
        "selector": {"matchLabels": labels(name)},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
