"""How clients reach the server: the stable Service, an optional Ingress and an optional NetworkPolicy."""

from __future__ import annotations

from typing import Any

from infra.settings import IngressSettings, NetworkPolicySettings

from .layout import PORT, PORT_NAME, labels

# Streaming NDJSON/SSE through nginx: no buffering either way, timeouts far above a long generation, big bodies.
STREAMING_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/proxy-buffering": "off",
    "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
    "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-body-size": "64m",
}


def service_spec(name: str) -> dict[str, Any]:
    return {
        "type": "ClusterIP",
        "selector": labels(name),
        "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
    }


def service_url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local:{PORT}"


def ingress_spec(name: str, ingress: IngressSettings) -> dict[str, Any]:
    backend = {"service": {"name": name, "port": {"name": PORT_NAME}}}
    spec: dict[str, Any] = {
        "rules": [{"host": ingress.host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
    }
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret}]
    return spec


def ingress_annotations(ingress: IngressSettings) -> dict[str, str]:
    return {**STREAMING_ANNOTATIONS, **ingress.annotations}


def network_policy_spec(name: str, namespace: str, policy: NetworkPolicySettings) -> dict[str, Any]:
    """Ingress to the API port from the server's own namespace and the listed ones; egress to DNS only (the
    pre-pull reads packaged weights from the image, nothing from the network)."""
    sources = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
        for ns in [namespace, *policy.allow_from_namespaces]
    ]
    dns = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return {
        "podSelector": {"matchLabels": labels(name)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": PORT}]}],
        "egress": [{"ports": dns}],
    }
