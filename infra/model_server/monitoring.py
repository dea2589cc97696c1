"""Metrics scraping: an optional Prometheus Operator ServiceMonitor (the CRD must exist in the cluster)."""

from __future__ import annotations

from typing import Any

from infra.settings import ServiceMonitorSettings

from .layout import PORT_NAME, labels


def service_monitor_spec(name: str, monitor: ServiceMonitorSettings) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": labels(name)},
        "endpoints": [{"port": PORT_NAME, "path": monitor.path, "interval": monitor.interval}],
    }
