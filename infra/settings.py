"""Typed stack settings: what a ``stacks/Pulumi.<stack>.yaml`` may say, with its defaults and meaning.

A stack file holds Pulumi config under the project's namespace (``corral:<key>``; a bare key means the same).
Keys in other namespaces (``kubernetes:context``) belong to providers and are not read here; secure (encrypted)
values are secrets, never settings. Every other key must be a field below: an unknown key fails with its name,
and so does a value of the wrong type. Field descriptions are the reference the README's deploy section follows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AccessMode = Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"]
KvCacheType = Literal["f16", "q8_0", "q4_0"]
ScalingMetric = Literal["corral_queue_depth", "corral_slots_busy"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuSettings(_Section):
    """Where the server pods run and which GPUs they get. ``count: 0`` with no node selector is a CPU stack."""

    count: int = Field(0, ge=0, description="GPUs per server pod (the `resource` limit); 0 runs on CPU")
    resource: str = Field("nvidia.com/gpu", description="Extended resource name (e.g. nvidia.com/mig-3g.40gb)")
    memory_gib: float = Field(0, ge=0, description="Memory of one GPU of the node pool, GiB (checked vs estimate)")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels of the GPU pool (any label set: GFD, cloud, custom)"
    )
    taint_key: str = Field("nvidia.com/gpu", description="Key of the GPU nodes' NoSchedule taint to tolerate")
    runtime_class: str | None = Field(None, description="runtimeClassName (e.g. nvidia); unset = cluster default")
    device_plugin: bool = Field(False, description="Also install the NVIDIA device plugin as a Helm release")
    device_plugin_version: str = Field("0.17.1", description="Chart version of nvidia-device-plugin")

    @property
    def targets_gpu_nodes(self) -> bool:
        """True when the pods are placed on GPU nodes (a GPU count, a GPU node selector or a runtime class)."""
        return self.count > 0 or bool(self.node_selector) or self.runtime_class is not None


class StorageSettings(_Section):
    """The model volume (a PersistentVolumeClaim holding the Ollama-layout store)."""

    storage_class: str | None = Field(None, description="StorageClass of the PVC; unset = the cluster default")
    access_mode: AccessMode = Field(
        "ReadWriteOnce", description="RWO/RWOP: one replica, Recreate rollouts; RWX: a store shared by N replicas"
    )
    size: str | None = Field(None, description="PVC size (a quantity, e.g. 200Gi); unset = computed from catalog")
    headroom: float = Field(1.2, ge=1.0, description="Computed size = catalog blobs x headroom + largest model")


class ProbeSettings(_Section):
    """The HTTP paths the kubelet probes on the server's port, and how long a model may take to load."""

    startup_path: str = Field("/", description="startupProbe path (answers once the server listens)")
    readiness_path: str = Field("/readyz", description="readinessProbe path (preloads loaded, not draining)")
    liveness_path: str = Field("/healthz", description="livenessProbe path (runners answer, no stuck step)")
    startup_seconds: int = Field(600, ge=10, description="Longest start (preload of catalog models) before restart")


class IngressSettings(_Section):
    """An optional Ingress in front of the Service (streaming-safe nginx annotations)."""

    host: str = Field(description="Host name the Ingress answers for")
    class_name: str | None = Field(None, description="ingressClassName; unset = the cluster default")
    tls_secret: str | None = Field(None, description="Secret with the TLS certificate; unset = plain HTTP")
    annotations: dict[str, str] = Field(default_factory=dict, description="Extra annotations (merged last)")


class AutoscalingSettings(_Section):
    """An optional autoscaling/v2 HorizontalPodAutoscaler on a Corral metric (needs a custom-metrics adapter).

    With it, the Deployment leaves ``spec.replicas`` to the autoscaler."""

    min_replicas: int = Field(1, ge=1, description="Fewest replicas")
    max_replicas: int = Field(2, ge=1, description="Most replicas (each needs its GPUs)")
    metric: ScalingMetric = Field("corral_queue_depth", description="Per-pod metric the HPA averages")
    target: float = Field(2, gt=0, description="Target average value of the metric per pod")
    scale_down_window_seconds: int = Field(600, ge=0, description="Scale-down stabilization (a model reload is slow)")


class ServiceMonitorSettings(_Section):
    """An optional Prometheus Operator ServiceMonitor for the server's metrics endpoint."""

    path: str = Field("/metrics", description="Scrape path")
    interval: str = Field("15s", description="Scrape interval")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels your Prometheus selects monitors by")


class NetworkPolicySettings(_Section):
    """An optional NetworkPolicy: API port only from the given namespaces (and the server's own), DNS egress."""

    allow_from_namespaces: list[str] = Field(default_factory=list, description="Namespaces allowed to call the API")


class ApiKeySettings(_Section):
    """Optional API keys from a Secret, mounted as a file the server reads as ``CORRAL_API_KEYS_FILE`` (one key
    per line; never in args or env). Rotating the Secret takes effect without a restart."""

    secret_name: str = Field("corral-api-key", description="Secret holding the key")
    secret_key: str = Field("api-key", description="Key inside the Secret")
    create: bool = Field(
        False, description="Create the Secret from the secret config value corral:apiKey (else it must exist)"
    )


LoadTestApi = Literal["native", "openai", "chat", "generate", "openai-chat", "openai-completions", "embed"]


class LoadTestResultsSettings(_Section):
    """The volume the load test's results are written to and kept on (a PersistentVolumeClaim)."""

    storage_class: str | None = Field(None, description="StorageClass of the results PVC; unset = cluster default")
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = Field(
        "ReadWriteOnce", description="RWO: the master runs on the node of the results pod; RWX: anywhere"
    )
    size: str = Field("1Gi", description="Size of the results PVC")


class LoadTestSettings(_Section):
    """An optional in-cluster Locust run against the server (``corral:index:LoadTest``): a master Job, a Job of
    workers, the master's Service, the locustfile in a ConfigMap, results kept on a PVC. Off unless set.

    The image (the server's unless ``image`` is set) must be built with the ``perf`` extra (the Dockerfile's
    default); it provides the ``perf`` package the locustfile imports."""

    model: str = Field(description="Model every request names (it must be in the catalog)")
    run_id: str = Field(
        "1",
        pattern=r"^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$",
        description="Names the run and its results folder; a new value starts a new run (the Jobs are replaced)",
    )
    users: int = Field(8, ge=1, description="Concurrent Locust users (streams), all workers together")
    spawn_rate: float | None = Field(None, gt=0, description="Users started per second; unset = all at once")
    duration: str = Field("5m", description="Run time after the users started (Locust --run-time: 30s, 5m, 1h)")
    workers: int = Field(1, ge=1, description="Locust worker pods (keep each under ~100 streams)")
    api: LoadTestApi = Field("native", description="Endpoint: native or openai chat, or any `corral perf --api`")
    input_words: int = Field(128, ge=1, description="Filler words per prompt (about one token each)")
    output_tokens: int = Field(64, ge=1, description="num_predict / max_tokens per request")
    slo: str = Field("", description="Thresholds that fail the run (exit code 3), e.g. ttft_p95=1000ms,errors=1%")
    target: str | None = Field(None, description="Base URL to load; unset = the server's in-cluster Service")
    image: str | None = Field(None, description="Image with Corral's perf extra; unset = the server image")
    worker_cpu: str = Field("1", description="CPU request and limit of each worker (one Locust process)")
    worker_memory: str = Field("1Gi", description="Memory request and limit of each worker")
    wait: bool = Field(False, description="`pulumi up` waits for the run and fails when the master fails")
    results: LoadTestResultsSettings = Field(
        default_factory=LoadTestResultsSettings, description="Where the results are kept"
    )

    @property
    def duration_seconds(self) -> float:
        from perf.run import parse_duration

        return parse_duration(self.duration)

    @model_validator(mode="after")
    def _readable_and_within_a_workers_budget(self) -> LoadTestSettings:
        from perf.planner import STREAMS_PER_WORKER
        from perf.slo import parse_slos

        try:
            if self.duration_seconds <= 0:
                raise ValueError("must be longer than 0s")
        except ValueError as exc:
            raise ValueError(f"duration: {exc}") from exc
        if self.slo:
            try:
                parse_slos(self.slo)
            except ValueError as exc:
                raise ValueError(f"slo: {exc}") from exc
        if self.users > self.workers * STREAMS_PER_WORKER:
            raise ValueError(
                f"users {self.users} over {self.workers} worker(s) is more than {STREAMS_PER_WORKER} "
                f"streams per worker, where Locust's own CPU skews the timings: set workers to at least "
                f"{-(-self.users // STREAMS_PER_WORKER)}"
            )
        return self


class StackSettings(_Section):
    """Everything one stack decides. Defaults give a one-replica CPU deployment of the repository's catalog."""

    image: str = Field(description="Server image, pinned by tag or digest (never :latest)")
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field("IfNotPresent", description="Pull policy")
    name: str = Field("corral", description="Name of the Deployment and of the stable Service")
    namespace: str = Field("corral", description="Namespace of every object")
    create_namespace: bool = Field(True, description="Create the namespace (Pod Security `restricted` labels)")
    catalog: str = Field("modelfiles/catalog.yaml", description="Catalog file, relative to the repository root")
    replicas: int = Field(1, ge=1, description="Server pods (ignored with autoscaling); >1 needs ReadWriteMany")
    num_parallel: int = Field(1, ge=1, description="OLLAMA_NUM_PARALLEL: request slots per loaded model")
    max_loaded_models: int = Field(1, ge=1, description="OLLAMA_MAX_LOADED_MODELS: models loaded at once")
    keep_alive: str = Field("5m", description="OLLAMA_KEEP_ALIVE: how long an idle model stays loaded")
    context_length: int = Field(0, ge=0, description="OLLAMA_CONTEXT_LENGTH: tokens per slot; 0 = model default")
    flash_attention: bool | None = Field(None, description="OLLAMA_FLASH_ATTENTION; unset lets llama.cpp decide")
    kv_cache_type: KvCacheType = Field("f16", description="OLLAMA_KV_CACHE_TYPE (q8_0/q4_0 need flash attention)")
    cpu: str = Field("2", description="CPU request and limit of the server container")
    memory: str | None = Field(None, description="Memory request and limit; unset = estimate + overhead")
    memory_overhead_mib: int = Field(768, ge=0, description="Added to the models' estimate (runtime, buffers)")
    termination_grace_seconds: int = Field(
        120, ge=20, description="Time for open streams to finish on shutdown (CORRAL_DRAIN_TIMEOUT is 15 s less)"
    )
    log_format: Literal["text", "json"] = Field("json", description="CORRAL_LOG_FORMAT of the server's logs")
    pull_timeout_minutes: int = Field(60, ge=10, description="How long `pulumi up` waits for the pre-pull + start")
    probes: ProbeSettings = Field(default_factory=ProbeSettings, description="Health probe paths and budget")
    gpu: GpuSettings = Field(default_factory=GpuSettings, description="GPU count, node pool and memory")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="The model volume")
    ingress: IngressSettings | None = Field(None, description="Optional Ingress")
    autoscaling: AutoscalingSettings | None = Field(None, description="Optional HPA on a Corral metric")
    service_monitor: ServiceMonitorSettings | None = Field(None, description="Optional ServiceMonitor")
    network_policy: NetworkPolicySettings | None = Field(None, description="Optional NetworkPolicy")
    api_key: ApiKeySettings | None = Field(None, description="Optional API key from a Secret")
    load_test: LoadTestSettings | None = Field(None, description="Optional in-cluster Locust run (off by default)")

    @model_validator(mode="after")
    def _one_writer_per_rwo_volume(self) -> StackSettings:
        single = self.storage.access_mode != "ReadWriteMany"
        if single and (self.replicas > 1 or (self.autoscaling and self.autoscaling.max_replicas > 1)):
            raise ValueError(
                f"storage.access_mode {self.storage.access_mode} allows one pod: set replicas (and "
                "autoscaling.max_replicas) to 1, or use ReadWriteMany storage for several replicas"
            )
        if self.autoscaling and self.autoscaling.min_replicas > self.autoscaling.max_replicas:
            raise ValueError("autoscaling.min_replicas must not exceed autoscaling.max_replicas")
        return self
