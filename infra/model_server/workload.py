"""The server Deployment: the pre-pull init container, the server container, probes, resources, GPU placement.

The pod spec is built as plain wire-form dicts (camelCase, as Kubernetes and the policies see it), so what a test
asserts on is exactly what the API server receives.
"""

from __future__ import annotations

import math
from typing import Any

from infra.quantity import format_bytes
from infra.settings import StackSettings

from .args import ModelServerArgs
from .layout import (
    CATALOG_BYTES_ANNOTATION,
    CATALOG_DIR,
    CHECKSUM_ANNOTATION,
    GPU_MEMORY_ANNOTATION,
    MEMORY_ANNOTATION,
    MODELS_DIR,
    PORT,
    PORT_NAME,
    PREPULL_CONTAINER,
    SERVER_CONTAINER,
    TMP_DIR,
    labels,
)
from .security import container_security_context, pod_security_context

CATALOG_FILE = f"{CATALOG_DIR}/catalog.yaml"
PRESTOP_SLEEP_SECONDS = 5
# The API keys Secret is mounted as a folder (never by subPath: the kubelet then swaps in a rotated Secret, and
# the server re-reads the file without a restart).
API_KEYS_DIR = "/etc/corral/api-keys"
API_KEYS_FILE = f"{API_KEYS_DIR}/keys"
# Of the pod's grace period, what the server leaves for unloading models after its drain deadline.
UNLOAD_MARGIN_SECONDS = 15


def drain_timeout_seconds(settings: StackSettings) -> int:
    """CORRAL_DRAIN_TIMEOUT: running requests finish within the grace period, with time left to unload."""
    return max(settings.termination_grace_seconds - UNLOAD_MARGIN_SECONDS, 5)


def server_env(settings: StackSettings) -> list[dict[str, Any]]:
    """The server's settings as the ``OLLAMA_*`` / ``CORRAL_*`` variables it reads (server/settings.py)."""
    env: list[dict[str, Any]] = [
        {"name": "OLLAMA_HOST", "value": f"0.0.0.0:{PORT}"},
        {"name": "OLLAMA_MODELS", "value": MODELS_DIR},
        {"name": "OLLAMA_NUM_PARALLEL", "value": str(settings.num_parallel)},
        {"name": "OLLAMA_MAX_LOADED_MODELS", "value": str(settings.max_loaded_models)},
        {"name": "OLLAMA_KEEP_ALIVE", "value": settings.keep_alive},
        {"name": "OLLAMA_CONTEXT_LENGTH", "value": str(settings.context_length)},
        {"name": "OLLAMA_KV_CACHE_TYPE", "value": settings.kv_cache_type},
        {"name": "CORRAL_CATALOG", "value": CATALOG_FILE},
        {"name": "CORRAL_DRAIN_TIMEOUT", "value": f"{drain_timeout_seconds(settings)}s"},
        {"name": "CORRAL_LOG_FORMAT", "value": settings.log_format},
        {"name": "HOME", "value": TMP_DIR},
    ]
    if settings.flash_attention is not None:
        env.append({"name": "OLLAMA_FLASH_ATTENTION", "value": "1" if settings.flash_attention else "0"})
    if settings.api_key is not None:
        env.append({"name": "CORRAL_API_KEYS_FILE", "value": API_KEYS_FILE})
    return env


def volume_mounts(catalog_keys: list[str]) -> list[dict[str, Any]]:
    """The model store, the catalog folder (its files from the ConfigMap, one subPath each, in a writable folder
    where packaged weights are put) and /tmp. The catalog folder stays writable in the server too: the runtime
    creates the subPath mount points inside it, which a read-only mount would refuse."""
    mounts: list[dict[str, Any]] = [
        {"name": "models", "mountPath": MODELS_DIR},
        {"name": "catalog", "mountPath": CATALOG_DIR},
        {"name": "tmp", "mountPath": TMP_DIR},
    ]
    for key in catalog_keys:
        mounts.append({"name": "catalog-files", "mountPath": f"{CATALOG_DIR}/{key}", "subPath": key, "readOnly": True})
    return mounts


def prepull_container(args: ModelServerArgs) -> dict[str, Any]:
    """`corral catalog apply` on the model volume: creates what is missing, leaves matching models untouched."""
    s = args.settings
    return {
        "name": PREPULL_CONTAINER,
        "image": s.image,
        "imagePullPolicy": s.image_pull_policy,
        "command": ["corral", "catalog", "apply", CATALOG_FILE],
        "env": [{"name": "OLLAMA_MODELS", "value": MODELS_DIR}, {"name": "HOME", "value": TMP_DIR}],
        "resources": {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "volumeMounts": volume_mounts(sorted(args.catalog.files)),
        "securityContext": container_security_context(),
    }


def probes(settings: StackSettings) -> dict[str, Any]:
    p = settings.probes

    def get(path: str) -> dict[str, Any]:
        return {"path": path, "port": PORT_NAME}

    return {
        "startupProbe": {
            "httpGet": get(p.startup_path),
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": math.ceil(p.startup_seconds / 10),
        },
        "readinessProbe": {"httpGet": get(p.readiness_path), "periodSeconds": 5, "timeoutSeconds": 3},
        "livenessProbe": {
            "httpGet": get(p.liveness_path),
            "periodSeconds": 15,
            "timeoutSeconds": 5,
            "failureThreshold": 4,
        },
    }


def server_resources(args: ModelServerArgs) -> dict[str, Any]:
    """Requests equal limits (Guaranteed QoS); GPUs only in the server container."""
    s = args.settings
    amounts: dict[str, Any] = {"cpu": s.cpu, "memory": args.memory}
    if s.gpu.count > 0:
        amounts[s.gpu.resource] = str(s.gpu.count)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def server_container(args: ModelServerArgs) -> dict[str, Any]:
    s = args.settings
    return {
        "name": SERVER_CONTAINER,
        "image": s.image,
        "imagePullPolicy": s.image_pull_policy,
        "command": ["corral", "serve"],
        "env": server_env(s),
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "resources": server_resources(args),
        "volumeMounts": volume_mounts(sorted(args.catalog.files)) + api_key_mounts(s),
        "securityContext": container_security_context(),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        **probes(s),
    }


def api_key_mounts(settings: StackSettings) -> list[dict[str, Any]]:
    if settings.api_key is None:
        return []
    return [{"name": "api-keys", "mountPath": API_KEYS_DIR, "readOnly": True}]


def volumes(args: ModelServerArgs, claim_name: str, config_map_name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "models", "persistentVolumeClaim": {"claimName": claim_name}},
        {"name": "catalog-files", "configMap": {"name": config_map_name}},
        {"name": "catalog", "emptyDir": {"sizeLimit": format_bytes(args.scratch_bytes)}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    key = args.settings.api_key
    if key is not None:
        items = [{"key": key.secret_key, "path": "keys"}]
        secret = {"secretName": key.secret_name, "items": items, "defaultMode": 0o440}
        out.append({"name": "api-keys", "secret": secret})
    return out


def placement(settings: StackSettings) -> dict[str, Any]:
    """GPU node pool: its node selector, a toleration of its taint, the runtime class when set."""
    gpu = settings.gpu
    if not gpu.targets_gpu_nodes:
        return {}
    spec: dict[str, Any] = {
        "tolerations": [{"key": gpu.taint_key, "operator": "Exists", "effect": "NoSchedule"}],
    }
    if gpu.node_selector:
        spec["nodeSelector"] = dict(gpu.node_selector)
    if gpu.runtime_class:
        spec["runtimeClassName"] = gpu.runtime_class
    return spec


def pod_template(args: ModelServerArgs, claim_name: str, config_map_name: str) -> dict[str, Any]:
    s = args.settings
    spec: dict[str, Any] = {
        "serviceAccountName": s.name,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": s.termination_grace_seconds + PRESTOP_SLEEP_SECONDS,
        "initContainers": [prepull_container(args)],
        "containers": [server_container(args)],
        "volumes": volumes(args, claim_name, config_map_name),
        **placement(s),
    }
    if args.max_replicas > 1:
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": labels(s.name)},
            }
        ]
    annotations = {
        CHECKSUM_ANNOTATION: args.catalog.checksum,
        MEMORY_ANNOTATION: str(args.memory_estimate_bytes),
        GPU_MEMORY_ANNOTATION: str(args.gpu_memory_bytes),
        CATALOG_BYTES_ANNOTATION: str(args.catalog.total_blob_bytes),
    }
    return {"metadata": {"labels": labels(s.name), "annotations": annotations}, "spec": spec}


def deployment_spec(args: ModelServerArgs, claim_name: str, config_map_name: str) -> dict[str, Any]:
    """One writer per RWO volume (Recreate); on shared storage, roll one pod at a time with no surge (no spare GPU
    is assumed). With an autoscaler, ``replicas`` is left out so `pulumi up` never fights it."""
    s = args.settings
    if s.storage.access_mode == "ReadWriteMany":
        strategy: dict[str, Any] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    else:
        strategy = {"type": "Recreate"}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels(s.name)},
        "strategy": strategy,
        "progressDeadlineSeconds": s.pull_timeout_minutes * 60,
        "template": pod_template(args, claim_name, config_map_name),
    }
    if s.autoscaling is None:
        spec["replicas"] = s.replicas
    return spec
