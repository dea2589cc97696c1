"""``corral:index:ModelServer``: one Corral deployment (namespace, catalog, model volume, server, its Service and
the optional extras), every child parented to it."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from . import autoscaling, monitoring, network, storage, workload
from .args import ModelServerArgs
from .gpu import device_plugin
from .layout import labels
from .security import NAMESPACE_LABELS

TYPE_TOKEN = "corral:index:ModelServer"


class ModelServer(pulumi.ComponentResource):
    """Outputs: ``service_url`` (in-cluster URL of the stable Service), ``namespace``, ``pvc_name``, ``replicas``
    (the Deployment's count, or the autoscaler's minimum). Objects carry explicit names, so a change that forces
    a replacement deletes before it creates."""

    service_url: pulumi.Output[str]
    namespace: pulumi.Output[str]
    pvc_name: pulumi.Output[str]
    replicas: pulumi.Output[int]

    def __init__(self, name: str, args: ModelServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        s = args.settings
        self._name = name
        self._args = args
        self._after: list[pulumi.Resource] = []
        if s.create_namespace:
            ns = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata={"name": s.namespace, "labels": {**labels(s.name), **NAMESPACE_LABELS}},
                opts=self._opts(),
            )
            self._after.append(ns)
        if s.gpu.device_plugin:
            device_plugin(name, s.gpu, self)
        self._identity()
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-catalog", metadata=storage.catalog_metadata(args), data=args.catalog.files, opts=self._opts()
        )
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-models",
            metadata=storage.claim_metadata(args),
            spec=storage.claim_spec(args),
            opts=self._opts(),
        )
        self.deployment = self._deployment(claim, config_map)
        self.service = k8s.core.v1.Service(
            f"{name}-service", metadata=self._meta(s.name), spec=network.service_spec(s.name), opts=self._opts()
        )
        self._extras()
        self.service_url = pulumi.Output.from_input(network.service_url(s.name, s.namespace))
        self.namespace = pulumi.Output.from_input(s.namespace)
        self.pvc_name = claim.metadata.apply(lambda m: str(m["name"] if isinstance(m, dict) else m.name))
        self.replicas = pulumi.Output.from_input(s.autoscaling.min_replicas if s.autoscaling else s.replicas)
        self.register_outputs(
            {
                "service_url": self.service_url,
                "namespace": self.namespace,
                "pvc_name": self.pvc_name,
                "replicas": self.replicas,
            }
        )

    def _opts(self, *after: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=[*self._after, *after], delete_before_replace=True)

    def _meta(self, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "namespace": self._args.settings.namespace, "labels": labels(name)}
        if annotations:
            meta["annotations"] = annotations
        return meta

    def _identity(self) -> None:
        """A dedicated ServiceAccount with no token, and the API-key Secret when the stack creates it."""
        s = self._args.settings
        k8s.core.v1.ServiceAccount(
            f"{self._name}-service-account",
            metadata=self._meta(s.name),
            automount_service_account_token=False,
            opts=self._opts(),
        )
        if s.api_key is not None and s.api_key.create:
            if self._args.api_key is None:
                raise ValueError("api_key.create is set but no key was given (pulumi config set --secret apiKey ...)")
            secret = k8s.core.v1.Secret(
                f"{self._name}-api-key",
                metadata=self._meta(s.api_key.secret_name),
                string_data={s.api_key.secret_key: pulumi.Output.secret(self._args.api_key)},
                opts=self._opts(),
            )
            self._after.append(secret)

    def _deployment(self, claim: pulumi.Resource, config_map: pulumi.Resource) -> k8s.apps.v1.Deployment:
        """Waits for the pre-pull and the start as long as the stack allows (a big catalog takes a while)."""
        s = self._args.settings
        timeout = f"{s.pull_timeout_minutes}m"
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=self._meta(s.name),
            spec=workload.deployment_spec(self._args, f"{s.name}-models", f"{s.name}-catalog"),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*self._after, claim, config_map],
                delete_before_replace=True,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
            ),
        )

    def _extras(self) -> None:
        """PodDisruptionBudget, and the optional Ingress, autoscaler, ServiceMonitor and NetworkPolicy."""
        s = self._args.settings
        k8s.policy.v1.PodDisruptionBudget(
            f"{self._name}-pdb", metadata=self._meta(s.name), spec=autoscaling.pdb_spec(s.name), opts=self._opts()
        )
        if s.ingress is not None:
            k8s.networking.v1.Ingress(
                f"{self._name}-ingress",
                metadata=self._meta(s.name, network.ingress_annotations(s.ingress)),
                spec=network.ingress_spec(s.name, s.ingress),
                opts=self._opts(),
            )
        if s.autoscaling is not None:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{self._name}-hpa",
                metadata=self._meta(s.name),
                spec=autoscaling.hpa_spec(s.name, s.autoscaling),
                opts=self._opts(self.deployment),
            )
        if s.service_monitor is not None:
            meta = self._meta(s.name)
            meta["labels"] = {**meta["labels"], **s.service_monitor.labels}
            k8s.apiextensions.CustomResource(
                f"{self._name}-service-monitor",
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata=meta,
                spec=monitoring.service_monitor_spec(s.name, s.service_monitor),
                opts=self._opts(),
            )
        if s.network_policy is not None:
            k8s.networking.v1.NetworkPolicy(
                f"{self._name}-network-policy",
                metadata=self._meta(s.name),
                spec=network.network_policy_spec(s.name, s.namespace, s.network_policy),
                opts=self._opts(),
            )
