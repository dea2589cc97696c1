"""The dev stack's rendered pod, run for real as local processes (item 6 of the deployment issue): the init
container's `corral catalog apply` fills the model volume (and a second run changes nothing), the server
container starts from the manifest's own command and env, passes the manifest's own probes, and serves the
conformance suite. Volumes are temporary folders; the pod comes from the manifests the real Pulumi engine and
Kubernetes provider render for the dev stack (``infra.engine.render``)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import engine
from infra.model_server.layout import PREPULL_CONTAINER, SERVER_CONTAINER

from .local_pod import LocalPod

pytestmark = pytest.mark.slow


@pytest.fixture
def pod(tmp_path: Path) -> LocalPod:
    manifests = engine.render("dev", workdir=tmp_path / "engine").manifests
    (deployment,) = [m for m in manifests if m["kind"] == "Deployment"]
    config_maps = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ConfigMap"}
    local = LocalPod(deployment, config_maps, tmp_path)
    local.prepare()
    return local


@pytest.fixture
def server(pod: LocalPod, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    applied = pod.run(PREPULL_CONTAINER, timeout=600)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    process = pod.start(SERVER_CONTAINER, tmp_path / "server.log")
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_prepull_fills_the_volume_once(pod: LocalPod) -> None:
    first = pod.run(PREPULL_CONTAINER, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "smollm2:135m" in first.stdout and "created" in first.stdout
    manifests = pod.root / "volumes" / "models" / "manifests"
    stamps = {p: p.stat().st_mtime_ns for p in manifests.rglob("*") if p.is_file()}
    assert len(stamps) == 3  # smollm2, gemma3 and all-minilm (converted from safetensors)
    second = pod.run(PREPULL_CONTAINER, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "store already matches the catalog; nothing changed" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in manifests.rglob("*") if p.is_file()} == stamps


def test_server_passes_its_probes_and_the_conformance_suite(
    pod: LocalPod, server: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    pod.wait_probe(SERVER_CONTAINER, "startupProbe", server)
    pod.wait_probe(SERVER_CONTAINER, "readinessProbe", server)
    pod.wait_probe(SERVER_CONTAINER, "livenessProbe", server)
    url = pod.probe_url(pod.container(SERVER_CONTAINER), "readinessProbe").rsplit("/", 1)[0]
    report = tmp_path / "parity.md"
    gate = subprocess.run(
        [
            str(Path(sys.executable).with_name("corral")),
            "conformance",
            "--url",
            url,
            "--model",
            "smollm2:135m",
            "--report",
            str(report),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert gate.returncode == 0, gate.stdout[-4000:] + gate.stderr[-2000:]
    assert report.is_file()
    grace = pod.spec["terminationGracePeriodSeconds"]
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=grace) is not None
