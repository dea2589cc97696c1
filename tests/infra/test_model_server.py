"""The ModelServer component under Pulumi mocks: assertions on the recorded resource graph (wire-form inputs)."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pulumi
import pytest
import yaml

from infra.model_server import TYPE_TOKEN, ModelServer, ModelServerArgs
from infra.program import REPO_ROOT, load_stack, program, settings_from_config
from infra.quantity import parse_quantity
from infra.settings import StackSettings
from infra.sizing import effective_num_ctx, read_catalog
from server.memory import loaded_model_bytes

from .graph import RecordingMocks, config_of

CATALOG = REPO_ROOT / "modelfiles" / "catalog.yaml"


def run(settings: StackSettings) -> None:
    @pulumi.runtime.test
    def body() -> pulumi.Output[int]:
        program(settings)
        return pulumi.Output.from_input(0)

    body()


def settings(**values: Any) -> StackSettings:
    return settings_from_config({"image": "localhost/corral:0.1.0", **values}, "test")


def kind(mocks: RecordingMocks, name: str) -> list[dict[str, Any]]:
    return [m for m in mocks.manifests() if m["kind"] == name]


def pod(mocks: RecordingMocks) -> dict[str, Any]:
    (deployment,) = kind(mocks, "Deployment")
    return dict(deployment["spec"]["template"])


def containers(mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    spec = pod(mocks)["spec"]
    return {c["name"]: c for c in [*spec["initContainers"], *spec["containers"]]}


def test_children_are_parented_to_the_component_and_outputs_registered(mocks: RecordingMocks) -> None:
    parents: dict[str, str | None] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        parent = args.opts.parent if args.opts else None
        parents[args.name] = parent._name if parent is not None else None  # type: ignore[attr-defined]

    pulumi.runtime.register_stack_transformation(record)

    @pulumi.runtime.test
    def body() -> pulumi.Output[list[Any]]:
        server = ModelServer("corral", ModelServerArgs(settings=load_stack("gpu"), catalog=read_catalog(CATALOG)))
        return pulumi.Output.all(server.service_url, server.namespace, server.pvc_name, server.replicas).apply(check)

    def check(outputs: list[Any]) -> list[Any]:
        assert outputs == ["http://corral.corral.svc.cluster.local:11434", "corral", "corral-models", 3]
        return outputs

    body()
    assert mocks.of_type(TYPE_TOKEN)
    children = {name: parent for name, parent in parents.items() if name != "corral"}
    assert len(children) >= 7
    assert set(children.values()) == {"corral"}


def test_dev_stack_is_cpu_only_with_one_replica_and_recreate(mocks: RecordingMocks) -> None:
    run(load_stack("dev"))
    (deployment,) = kind(mocks, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert "tolerations" not in spec["template"]["spec"]
    assert "nodeSelector" not in spec["template"]["spec"]
    for container in containers(mocks).values():
        assert not any("gpu" in key for key in container["resources"]["limits"])
    (claim,) = kind(mocks, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_gpu_stack_requests_gpus_tolerates_the_taint_and_shares_an_rwx_volume(mocks: RecordingMocks) -> None:
    run(load_stack("gpu"))
    template = pod(mocks)
    server = containers(mocks)["server"]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert server["resources"]["requests"] == server["resources"]["limits"]
    assert "nvidia.com/gpu" not in containers(mocks)["catalog-apply"]["resources"]["limits"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in template["spec"]["tolerations"]
    assert template["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert template["spec"]["runtimeClassName"] == "nvidia"
    assert (
        template["spec"]["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]
        == (template["metadata"]["labels"])
    )
    (deployment,) = kind(mocks, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    (claim,) = kind(mocks, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["storageClassName"] == "shared-rwx"


def test_server_env_carries_the_stack_settings(mocks: RecordingMocks) -> None:
    run(load_stack("gpu"))
    env = {e["name"]: e.get("value") for e in containers(mocks)["server"]["env"]}
    assert env["OLLAMA_NUM_PARALLEL"] == "8"
    assert env["OLLAMA_MAX_LOADED_MODELS"] == "2"
    assert env["OLLAMA_KEEP_ALIVE"] == "30m"
    assert env["OLLAMA_CONTEXT_LENGTH"] == "8192"
    assert env["OLLAMA_FLASH_ATTENTION"] == "1"
    assert env["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
    assert env["CORRAL_CATALOG"] == "/etc/corral/catalog/catalog.yaml"
    assert env["OLLAMA_HOST"] == "0.0.0.0:11434"
    assert containers(mocks)["server"]["ports"] == [{"name": "http", "containerPort": 11434, "protocol": "TCP"}]


def test_prepull_applies_the_mounted_catalog_to_the_same_volume_as_the_server(mocks: RecordingMocks) -> None:
    run(load_stack("dev"))
    init, server = containers(mocks)["catalog-apply"], containers(mocks)["server"]
    assert init["command"] == ["corral", "catalog", "apply", "/etc/corral/catalog/catalog.yaml"]
    init_env = {e["name"]: e["value"] for e in init["env"]}
    server_env = {e["name"]: e.get("value") for e in server["env"]}
    assert init_env["OLLAMA_MODELS"] == server_env["OLLAMA_MODELS"] == "/models"
    mounts = {m["mountPath"]: m for m in init["volumeMounts"]}
    assert mounts["/models"]["name"] == "models"
    assert {m["mountPath"] for m in server["volumeMounts"]} == set(mounts)
    (config_map,) = kind(mocks, "ConfigMap")
    for key in config_map["data"]:
        assert mounts[f"/etc/corral/catalog/{key}"] == {
            "name": "catalog-files",
            "mountPath": f"/etc/corral/catalog/{key}",
            "subPath": key,
            "readOnly": True,
        }
    assert set(config_map["data"]) == {
        "catalog.yaml",
        "smollm2-135m.Modelfile",
        "gemma3-270m.Modelfile",
        "all-minilm-22m.Modelfile",
    }


def test_volume_is_sized_from_the_catalog_blobs(mocks: RecordingMocks) -> None:
    run(load_stack("dev"))
    bundle = read_catalog(CATALOG)
    (claim,) = kind(mocks, "PersistentVolumeClaim")
    size = parse_quantity(claim["spec"]["resources"]["requests"]["storage"])
    assert size >= bundle.total_blob_bytes * 1.2 + bundle.largest_blob_bytes
    assert size < bundle.total_blob_bytes * 1.2 + bundle.largest_blob_bytes + 2**20 + 1


def test_an_explicit_volume_size_wins(mocks: RecordingMocks) -> None:
    run(settings(storage={"size": "50Gi", "storage_class": "fast"}))
    (claim,) = kind(mocks, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"


def test_memory_comes_from_the_servers_estimator(mocks: RecordingMocks) -> None:
    stack = load_stack("gpu")
    run(stack)
    bundle = read_catalog(CATALOG)
    per_model = sorted(
        (
            loaded_model_bytes(
                m.weights_bytes, m.shape, effective_num_ctx(m, stack.context_length) * stack.num_parallel, "q8_0"
            )
            for m in bundle.models
        ),
        reverse=True,
    )
    expected = sum(per_model[: stack.max_loaded_models]) + stack.memory_overhead_mib * 2**20
    annotations = pod(mocks)["metadata"]["annotations"]
    assert int(annotations["corral.dev/memory-estimate-bytes"]) == expected
    assert int(annotations["corral.dev/gpu-memory-bytes"]) == 24 * 2**30
    limit = parse_quantity(containers(mocks)["server"]["resources"]["limits"]["memory"])
    assert expected <= limit < expected + 2**20


def test_catalog_checksum_rolls_pods_only_when_the_catalog_changes(mocks: RecordingMocks, tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    shutil.copytree(CATALOG.parent, folder, ignore=shutil.ignore_patterns("weights"))
    (folder / "weights").symlink_to(CATALOG.parent / "weights")
    same = read_catalog(folder / "catalog.yaml").checksum
    assert same == read_catalog(CATALOG).checksum
    modelfile = folder / "smollm2-135m.Modelfile"
    modelfile.write_text(modelfile.read_text() + "\nPARAMETER temperature 0.5\n")
    changed = read_catalog(folder / "catalog.yaml").checksum
    assert changed != same
    run(settings(catalog=str(folder / "catalog.yaml")))
    assert pod(mocks)["metadata"]["annotations"]["checksum/catalog"] == changed


def test_every_container_is_restricted_and_the_namespace_enforces_it(mocks: RecordingMocks) -> None:
    run(load_stack("gpu"))
    spec = pod(mocks)["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in containers(mocks).values():
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
    assert all(set(v) & {"persistentVolumeClaim", "emptyDir", "configMap"} for v in spec["volumes"])
    (namespace,) = kind(mocks, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    (account,) = kind(mocks, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def test_probes_hit_the_named_port_and_the_path_is_one_setting(mocks: RecordingMocks) -> None:
    run(settings(probes={"startup_path": "/api/version", "readiness_path": "/healthz", "startup_seconds": 1800}))
    server = containers(mocks)["server"]
    assert server["startupProbe"]["httpGet"] == {"path": "/api/version", "port": "http"}
    assert server["startupProbe"]["failureThreshold"] * server["startupProbe"]["periodSeconds"] >= 1800
    assert server["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_deployment_waits_as_long_as_the_prepull_may_take(mocks: RecordingMocks) -> None:
    run(settings(pull_timeout_minutes=90))
    (deployment,) = kind(mocks, "Deployment")
    assert deployment["spec"]["progressDeadlineSeconds"] == 90 * 60


def test_autoscaler_owns_replicas(mocks: RecordingMocks) -> None:
    run(
        settings(
            storage={"access_mode": "ReadWriteMany"},
            autoscaling={"min_replicas": 2, "max_replicas": 4, "metric": "corral_slots_busy", "target": 3},
        )
    )
    (deployment,) = kind(mocks, "Deployment")
    assert "replicas" not in deployment["spec"]
    (hpa,) = kind(mocks, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "corral"}
    assert hpa["spec"]["metrics"][0]["pods"]["metric"] == {"name": "corral_slots_busy"}
    assert hpa["spec"]["metrics"][0]["pods"]["target"] == {"type": "AverageValue", "averageValue": "3"}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300


def test_optional_extras_are_off_by_default(mocks: RecordingMocks) -> None:
    run(load_stack("dev"))
    kinds = {m["kind"] for m in mocks.manifests()}
    expected = {"Namespace", "ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"}
    assert kinds == expected | {"PodDisruptionBudget"}
    assert not mocks.of_type("kubernetes:helm.sh/v3:Release")


def test_optional_extras_when_asked(mocks: RecordingMocks) -> None:
    pulumi.runtime.set_all_config({"corral:apiKey": "s3cret"}, secret_keys=["corral:apiKey"])
    run(
        settings(
            ingress={"host": "llm.example.com", "class_name": "nginx"},
            service_monitor={"labels": {"release": "prom"}},
            network_policy={"allow_from_namespaces": ["apps"]},
            api_key={"create": True},
            gpu={"count": 1, "memory_gib": 24, "device_plugin": True},
        )
    )
    (ingress,) = kind(mocks, "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "corral"
    (monitor,) = kind(mocks, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    (policy,) = kind(mocks, "NetworkPolicy")
    namespaces = [
        f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for f in policy["spec"]["ingress"][0]["from"]
    ]
    assert namespaces == ["corral", "apps"]
    (secret,) = kind(mocks, "Secret")
    assert secret["stringData"] == {"api-key": "s3cret"}
    server = containers(mocks)["server"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    # The Secret is a mounted folder (rotations reach the server), never env, args or a subPath mount.
    assert env["CORRAL_API_KEYS_FILE"] == "/etc/corral/api-keys/keys"
    (keys_volume,) = [v for v in pod(mocks)["spec"]["volumes"] if v["name"] == "api-keys"]
    assert keys_volume["secret"]["secretName"] == "corral-api-key"
    assert keys_volume["secret"]["items"] == [{"key": "api-key", "path": "keys"}]
    (mount,) = [m for m in server["volumeMounts"] if m["name"] == "api-keys"]
    assert mount == {"name": "api-keys", "mountPath": "/etc/corral/api-keys", "readOnly": True}
    assert env["CORRAL_DRAIN_TIMEOUT"] == "105s" and pod(mocks)["spec"]["terminationGracePeriodSeconds"] == 125
    assert not any("s3cret" in str(c.get("command", "")) + str(c.get("args", "")) for c in containers(mocks).values())
    (release,) = mocks.of_type("kubernetes:helm.sh/v3:Release")
    assert release.inputs["chart"] == "nvidia-device-plugin"


def test_api_key_secret_needs_the_secret_config_value(mocks: RecordingMocks) -> None:
    with pytest.raises(Exception, match="apiKey"):
        run(settings(api_key={"create": True}))


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_every_object_validates_strictly_on_the_supported_versions(mocks: RecordingMocks, version: str) -> None:
    """1.30 is the oldest supported minor: preStop `sleep` is on by default from there (GA in 1.34)."""
    pulumi.runtime.set_all_config({"corral:apiKey": "k"}, secret_keys=["corral:apiKey"])
    run(
        settings(
            storage={"access_mode": "ReadWriteMany"},
            autoscaling={"max_replicas": 3},
            ingress={"host": "llm.example.com", "tls_secret": "tls"},
            network_policy={"allow_from_namespaces": ["apps"]},
            api_key={"create": True},
            gpu={"count": 1, "memory_gib": 24, "node_selector": {"nvidia.com/gpu.present": "true"}},
        )
    )
    manifests = mocks.manifests()
    assert len(manifests) == 11
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_cli_entry_point_reads_the_stack_config(mocks: RecordingMocks) -> None:
    """`pulumi up` runs infra/__main__.py with the stack's config as the engine passes it (objects as JSON)."""
    raw = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.gpu.yaml").read_text())["config"]
    config = config_of({key.split(":", 1)[1]: value for key, value in raw.items()})
    pulumi.runtime.set_all_config({**config, "kubernetes:context": "ignored"})

    @pulumi.runtime.test
    def body() -> pulumi.Output[int]:
        runpy.run_path(str(REPO_ROOT / "infra" / "__main__.py"))
        return pulumi.Output.from_input(0)

    body()
    (deployment,) = kind(mocks, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert containers(mocks)["server"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
