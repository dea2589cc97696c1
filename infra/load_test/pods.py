"""The load-test pods as wire-form dicts (camelCase, as Kubernetes and the policies see them): the Locust master
(a Job that runs once, headless, for a fixed time), its workers (a Job of ``workers`` pods that exit when the
master quits), and a small pod that keeps the results volume mounted so the results can be fetched.

Why Jobs for the workers, not a Deployment: a Locust worker exits when its master quits; a Deployment would
restart it, and it would then retry a master that is gone and crash-loop. A Job's workers finish with the run.
"""

from __future__ import annotations

from typing import Any

from infra.model_server.security import container_security_context, pod_security_context
from perf.apis import api_named
from perf.run import USER_CLASS

from .args import LoadTestArgs
from .layout import (
    DEADLINE_MARGIN_SECONDS,
    EXPECT_WORKERS_SECONDS,
    LOCUSTFILE,
    LOCUSTFILE_DIR,
    MASTER,
    MASTER_CONTAINER,
    MASTER_PORT,
    MASTER_PORT_NAME,
    RESULTS,
    RESULTS_CONTAINER,
    RESULTS_DIR,
    RUN_FILE,
    TMP_DIR,
    WORKER,
    WORKER_CONTAINER,
    labels,
    results_path,
)

# The master's entry: make the run's folder, keep run.json beside the results, then become Locust.
MASTER_SCRIPT = f'mkdir -p "$RESULTS" && cp {RUN_FILE} "$RESULTS/run.json" && exec "$@"'
SMALL = {"cpu": "250m", "memory": "256Mi"}
_HOSTNAME = "kubernetes.io/hostname"


def user_class(args: LoadTestArgs) -> str:
    return USER_CLASS[api_named(args.settings.api).name]


def locust_base(args: LoadTestArgs) -> list[str]:
    """``locust -f <locustfile> <UserClass>`` and the workload options every process must agree on."""
    s = args.settings
    return [
        "locust", "-f", LOCUSTFILE, user_class(args),
        "-H", args.target,
        "--model", s.model,
        "--input-words", str(s.input_words),
        "--output-tokens", str(s.output_tokens),
        "--target-name", args.server_name,
    ]  # fmt: skip


def master_args(args: LoadTestArgs) -> list[str]:
    """Headless master: waits for every worker, runs ``duration`` at ``users``, writes Locust's CSV and HTML
    to the run's results folder, exits 3 when an SLO is broken (the locustfile's gate)."""
    s = args.settings
    out = results_path(s.run_id)
    argv = [
        *locust_base(args),
        "--headless", "--only-summary",
        "--master", "--master-bind-port", str(MASTER_PORT),
        "--expect-workers", str(s.workers), "--expect-workers-max-wait", str(EXPECT_WORKERS_SECONDS),
        "-u", str(s.users), "-r", f"{s.spawn_rate or s.users:g}", "-t", f"{s.duration_seconds:g}s",
        "--csv", f"{out}/locust", "--csv-full-history", "--html", f"{out}/locust.html",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    if s.slo:
        argv += ["--slo", s.slo]
    return argv


def worker_args(args: LoadTestArgs, master_service: str) -> list[str]:
    return [*locust_base(args), "--worker", "--master-host", master_service, "--master-port", str(MASTER_PORT)]


def deadline_seconds(args: LoadTestArgs) -> int:
    """Longest a run's pods may live: the run, the wait for workers and a margin."""
    return int(args.settings.duration_seconds) + EXPECT_WORKERS_SECONDS + DEADLINE_MARGIN_SECONDS


def _resources(amounts: dict[str, str]) -> dict[str, Any]:
    """Requests equal limits (Guaranteed QoS: a load generator must not be throttled by its neighbours)."""
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _mounts(*, results: bool) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"name": "locustfile", "mountPath": LOCUSTFILE_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": TMP_DIR},
    ]
    if results:
        mounts.append({"name": "results", "mountPath": RESULTS_DIR})
    return mounts


def _volumes(config_map: str, claim: str | None) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "locustfile", "configMap": {"name": config_map}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
    ]
    if claim:
        volumes.append({"name": "results", "persistentVolumeClaim": {"claimName": claim}})
    return volumes


def _env(args: LoadTestArgs) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "HOME", "value": TMP_DIR}, {"name": "PYTHONUNBUFFERED", "value": "1"}]
    if args.api_key is not None:  # from the Secret, never in args
        name, key = args.api_key
        env.append({"name": "OLLAMA_API_KEY", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}})
    return env


def _pod_spec(containers: list[dict[str, Any]], volumes: list[dict[str, Any]], restart: str) -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "restartPolicy": restart,
        "containers": containers,
        "volumes": volumes,
    }


def master_job_spec(args: LoadTestArgs, config_map: str, claim: str) -> dict[str, Any]:
    """One pod, never retried (a second attempt would mix two runs' results). On a ReadWriteOnce results volume
    the pod must share a node with the results pod that holds the volume."""
    s = args.settings
    container = {
        "name": MASTER_CONTAINER,
        "image": args.image,
        "imagePullPolicy": args.image_pull_policy,
        "command": ["sh", "-c", MASTER_SCRIPT, "load-test"],
        "args": master_args(args),
        "env": [*_env(args), {"name": "RESULTS", "value": results_path(s.run_id)}],
        "ports": [{"name": MASTER_PORT_NAME, "containerPort": MASTER_PORT, "protocol": "TCP"}],
        "resources": _resources(SMALL),
        "volumeMounts": _mounts(results=True),
        "securityContext": container_security_context(),
    }
    spec = _pod_spec([container], _volumes(config_map, claim), "Never")
    if s.results.access_mode == "ReadWriteOnce":
        term = {"labelSelector": {"matchLabels": labels(args.server_name, RESULTS)}, "topologyKey": _HOSTNAME}
        spec["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {
        "backoffLimit": 0,
        "activeDeadlineSeconds": deadline_seconds(args),
        "template": {"metadata": {"labels": labels(args.server_name, MASTER)}, "spec": spec},
    }


def worker_job_spec(args: LoadTestArgs, config_map: str, master_service: str) -> dict[str, Any]:
    """``workers`` pods at once; one that fails (its master not up yet) is restarted in place."""
    s = args.settings
    amounts = {"cpu": s.worker_cpu, "memory": s.worker_memory}
    argv = worker_args(args, master_service)
    container = {
        "name": WORKER_CONTAINER,
        "image": args.image,
        "imagePullPolicy": args.image_pull_policy,
        "command": argv[:1],
        "args": argv[1:],
        "env": _env(args),
        "resources": _resources(amounts),
        "volumeMounts": _mounts(results=False),
        "securityContext": container_security_context(),
    }
    spec = _pod_spec([container], _volumes(config_map, None), "OnFailure")
    spec["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": _HOSTNAME,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels(args.server_name, WORKER)},
        }
    ]
    return {
        "parallelism": s.workers,
        "completions": s.workers,
        "backoffLimit": 2 * s.workers,
        "activeDeadlineSeconds": deadline_seconds(args),
        "template": {"metadata": {"labels": labels(args.server_name, WORKER)}, "spec": spec},
    }


def results_deployment_spec(args: LoadTestArgs, claim: str) -> dict[str, Any]:
    """A pod that only holds the results volume (read-only), so ``kubectl exec ... tar`` can fetch a run's
    folder after the master has finished."""
    check = {"exec": {"command": ["test", "-d", RESULTS_DIR]}}
    container = {
        "name": RESULTS_CONTAINER,
        "image": args.image,
        "imagePullPolicy": args.image_pull_policy,
        "command": ["sleep", "infinity"],
        "env": [{"name": "HOME", "value": TMP_DIR}],
        "resources": _resources({"cpu": "50m", "memory": "64Mi"}),
        "volumeMounts": [{"name": "results", "mountPath": RESULTS_DIR, "readOnly": True}],
        "securityContext": container_security_context(),
        "startupProbe": {**check, "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {**check, "periodSeconds": 30},
        "livenessProbe": {**check, "periodSeconds": 60},
    }
    volumes = [{"name": "results", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}]
    return {
        "replicas": 1,
        "selector": {"matchLabels": labels(args.server_name, RESULTS)},
        "strategy": {"type": "Recreate"},
        "template": {
            "metadata": {"labels": labels(args.server_name, RESULTS)},
            "spec": _pod_spec([container], volumes, "Always"),
        },
    }


def master_service_spec(args: LoadTestArgs) -> dict[str, Any]:
    return {
        "type": "ClusterIP",
        "selector": labels(args.server_name, MASTER),
        "ports": [{"name": MASTER_PORT_NAME, "port": MASTER_PORT, "targetPort": MASTER_PORT_NAME, "protocol": "TCP"}],
    }
