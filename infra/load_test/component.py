"""``corral:index:LoadTest``: an in-cluster Locust run against a Corral server, every child parented to it.

Children: the ConfigMap with the repository's locustfile (and the run's ``run.json``), the results
PersistentVolumeClaim and the pod that keeps it mounted, the master's Service, the master Job and the workers'
Job. Job names carry the run id, so a new ``run_id`` replaces both Jobs (a Job cannot be changed in place) while
the results of earlier runs stay on the volume.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from . import pods
from .args import LoadTestArgs
from .layout import MASTER, RESULTS, WORKER, base_name, labels, results_path

TYPE_TOKEN = "corral:index:LoadTest"
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
# Beyond the run's own deadline, when `pulumi up` waits for it.
AWAIT_MARGIN_SECONDS = 120


class LoadTest(pulumi.ComponentResource):
    """Outputs: ``master_job`` (the master Job's name: ``kubectl logs job/<it>`` shows Locust's summary),
    ``results_claim``, ``results_path`` (the run's folder on that volume), ``results_deployment`` (the pod to
    fetch results from). ``pulumi up`` returns once the objects exist, unless ``wait`` is set: then it waits
    for the run and fails when the master fails (an SLO broken: exit code 3)."""

    master_job: pulumi.Output[str]
    results_claim: pulumi.Output[str]
    results_path: pulumi.Output[str]
    results_deployment: pulumi.Output[str]

    def __init__(self, name: str, args: LoadTestArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._args = args
        s = args.settings
        base = base_name(args.server_name)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-locustfile",
            metadata=self._meta(base, "locustfile"),
            data={"locustfile.py": args.locustfile, "run.json": args.run_record()},
            opts=self._opts(),
        )
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-results",
            metadata=self._meta(f"{base}-results", RESULTS),
            spec=self._claim_spec(),
            opts=self._opts(),
        )
        holder = k8s.apps.v1.Deployment(
            f"{name}-results-holder",
            metadata=self._meta(f"{base}-results", RESULTS),
            spec=pods.results_deployment_spec(args, f"{base}-results"),
            opts=self._opts(claim),
        )
        service = k8s.core.v1.Service(
            f"{name}-master-service",
            metadata=self._meta(f"{base}-master", MASTER, SKIP_AWAIT),
            spec=pods.master_service_spec(args),
            opts=self._opts(),
        )
        master = k8s.batch.v1.Job(
            f"{name}-master",
            metadata=self._meta(f"{base}-{s.run_id}-master", MASTER, None if s.wait else SKIP_AWAIT),
            spec=pods.master_job_spec(args, base, f"{base}-results"),
            opts=self._master_opts(config_map, claim, holder, service),
        )
        k8s.batch.v1.Job(
            f"{name}-workers",
            metadata=self._meta(f"{base}-{s.run_id}-workers", WORKER, SKIP_AWAIT),
            spec=pods.worker_job_spec(args, base, f"{base}-master"),
            opts=self._opts(config_map, service),
        )
        self.master_job = master.metadata.apply(lambda m: str(m["name"] if isinstance(m, dict) else m.name))
        self.results_claim = claim.metadata.apply(lambda m: str(m["name"] if isinstance(m, dict) else m.name))
        self.results_path = pulumi.Output.from_input(results_path(s.run_id))
        self.results_deployment = pulumi.Output.from_input(f"{base}-results")
        self.register_outputs(
            {
                "master_job": self.master_job,
                "results_claim": self.results_claim,
                "results_path": self.results_path,
                "results_deployment": self.results_deployment,
            }
        )

    def _opts(self, *after: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(after), delete_before_replace=True)

    def _master_opts(self, *after: pulumi.Resource) -> pulumi.ResourceOptions:
        opts = self._opts(*after)
        if self._args.settings.wait:
            timeout = f"{pods.deadline_seconds(self._args) + AWAIT_MARGIN_SECONDS}s"
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout))
            )
        return opts

    def _meta(self, name: str, role: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "namespace": self._args.namespace,
            "labels": labels(self._args.server_name, role),
        }
        if annotations:
            meta["annotations"] = dict(annotations)
        return meta

    def _claim_spec(self) -> dict[str, Any]:
        results = self._args.settings.results
        spec: dict[str, Any] = {
            "accessModes": [results.access_mode],
            "resources": {"requests": {"storage": results.size}},
        }
        if results.storage_class:
            spec["storageClassName"] = results.storage_class
        return spec
