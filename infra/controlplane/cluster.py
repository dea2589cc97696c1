"""Start and stop a real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-scheduler,
kube-controller-manager and KWOK, each on a free 127.0.0.1 port, all state in one working folder.

The cluster admin authenticates with a static token (group ``system:masters``); the scheduler, the
controller-manager and KWOK use the same kubeconfig. Authorization is RBAC and the API server's default admission
plugins run, Pod Security admission included, so a namespace labelled ``restricted`` really rejects pods that
break the profile.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import yaml

from infra.controlplane.client import KubeClient
from infra.controlplane.nodes import KWOK_ANNOTATION, FakeNode
from infra.controlplane.processes import ManagedProcess, free_port
from infra.toolchain.tools import locate

T = TypeVar("T")

# Generous: the machines that run this are small and busy.
START_TIMEOUT = 180.0


class ControlPlaneError(RuntimeError):
    """A component did not come up; the message holds the end of its log."""


@dataclass
class ControlPlane(AbstractContextManager["ControlPlane"]):
    """A running control plane; create it with :meth:`start`, end it with :meth:`stop` (or ``with``)."""

    workdir: Path
    server: str
    token: str
    kubeconfig: Path
    client: KubeClient
    processes: list[ManagedProcess] = field(default_factory=list)
    etcd_url: str = ""
    signing_key: Path = field(default_factory=Path)
    cert_dir: Path = field(default_factory=Path)

    @classmethod
    def start(cls, workdir: Path) -> ControlPlane:
        """Start every component in ``workdir`` (which must exist) and wait until the cluster can run pods.

        Raises :class:`ControlPlaneError` (after stopping what did start) if a component fails;
        :class:`infra.toolchain.tools.ToolMissing` if a binary is not built.
        """
        binaries = {
            name: locate(name)
            for name in ("etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager", "kwok", "stages")
        }
        token = secrets.token_hex(16)
        secure_port = free_port()
        server = f"https://127.0.0.1:{secure_port}"
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(server, token)))
        plane = cls(workdir, server, token, kubeconfig, KubeClient(server, token))
        try:
            plane._start_etcd(binaries["etcd"])
            plane._start_apiserver(binaries["kube-apiserver"], secure_port)
            plane._start_controllers(binaries)
            plane._wait_settled()
        except BaseException:
            plane.stop()
            raise
        return plane

    def _launch(self, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.workdir / f"{name}.log")
        process.start()
        self.processes.append(process)
        return process

    def _start_etcd(self, etcd: Path) -> None:
        client_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"
        process = self._launch(
            "etcd",
            [
                str(etcd),
                "--name=corral",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=corral={peer_url}",
                "--unsafe-no-fsync",
            ],
        )
        self.etcd_url = client_url
        _wait(process, lambda: _answers(f"{client_url}/health"), "etcd health")

    def _start_apiserver(self, apiserver: Path, secure_port: int) -> None:
        keys = self.workdir / "keys"
        keys.mkdir()
        signing_key, public_key = keys / "sa.key", keys / "sa.pub"
        subprocess.run(["openssl", "genrsa", "-out", str(signing_key), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(signing_key), "-pubout", "-out", str(public_key)],
            check=True,
            capture_output=True,
        )
        tokens = keys / "tokens.csv"
        tokens.write_text(f'{self.token},corral-admin,corral-admin,"system:masters"\n')
        self.signing_key = signing_key
        self.cert_dir = self.workdir / "apiserver-certs"
        process = self._launch(
            "kube-apiserver",
            [
                str(apiserver),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={secure_port}",
                f"--cert-dir={self.cert_dir}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={public_key}",
                f"--service-account-signing-key-file={signing_key}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--profiling=false",
                # The kubernetes Service's endpoint would be 127.0.0.1, which the reconciler refuses; no pod here
                # talks to the API server through it.
                "--endpoint-reconciler-type=none",
            ],
        )
        _wait(process, self.client.healthy, "API server readiness (/readyz)")

    def _start_controllers(self, binaries: dict[str, Path]) -> None:
        common = [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
        ]
        scheduler_port, manager_port = free_port(), free_port()
        scheduler = self._launch(
            "kube-scheduler", [str(binaries["kube-scheduler"]), *common, f"--secure-port={scheduler_port}"]
        )
        manager = self._launch(
            "kube-controller-manager",
            [
                str(binaries["kube-controller-manager"]),
                *common,
                f"--secure-port={manager_port}",
                f"--service-account-private-key-file={self.signing_key}",
                f"--root-ca-file={self.cert_dir / 'apiserver.crt'}",
                "--cluster-name=corral",
            ],
        )
        stages = sorted(str(p) for p in binaries["stages"].glob("*.yaml"))
        kwok = self._launch(
            "kwok",
            [
                str(binaries["kwok"]),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                f"--server-address=127.0.0.1:{free_port()}",
                "--cidr=10.244.0.0/16",
                "--node-ip=127.0.0.1",
                *(f"--config={stage}" for stage in stages),
            ],
        )
        _wait(scheduler, lambda: _https_ok(scheduler_port), "kube-scheduler health (/healthz)")
        _wait(manager, lambda: _https_ok(manager_port), "kube-controller-manager health (/healthz)")
        _wait(kwok, kwok.running, "KWOK start")

    def _wait_settled(self) -> None:
        # Pods can be admitted once the service-account controller has made the default account.
        def default_account() -> bool:
            self.client.get("/api/v1/namespaces/default/serviceaccounts/default")
            return True

        self._watch(default_account, "the default service account (controller-manager)")

    def _watch(self, probe: Callable[[], T | None], what: str) -> T:
        try:
            return self.client.wait_for(probe, START_TIMEOUT, what)
        except TimeoutError as exc:
            raise ControlPlaneError(f"{exc}\n{self.describe_logs()}") from exc

    def add_node(self, node: FakeNode) -> dict[str, Any]:
        """Create ``node`` and wait until KWOK reports it Ready; returns the Node object."""
        self.client.create("/api/v1/nodes", node.manifest())

        def ready() -> dict[str, Any] | None:
            current = self.client.get(f"/api/v1/nodes/{node.name}")
            conditions = current.get("status", {}).get("conditions") or []
            is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            return current if is_ready else None

        return self._watch(ready, f"node {node.name} Ready (KWOK)")

    def describe_logs(self, lines: int = 15) -> str:
        """The end of every component's log, for error messages."""
        return "\n".join(f"--- {p.name} ({p.log}):\n{p.log_tail(lines)}" for p in self.processes)

    def stop(self) -> None:
        """Stop every component, newest first; idempotent."""
        for process in reversed(self.processes):
            process.stop()
        self.client.close()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _wait(process: ManagedProcess, ready: Callable[[], bool], what: str) -> None:
    try:
        process.wait_until(ready, START_TIMEOUT, what)
    except TimeoutError as exc:
        raise ControlPlaneError(str(exc)) from exc


def _answers(url: str) -> bool:
    """True when ``url`` answers 200 (self-signed loopback certificates are not verified)."""
    try:
        return httpx.get(url, verify=False, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _https_ok(port: int) -> bool:
    return _answers(f"https://127.0.0.1:{port}/healthz")


def _kubeconfig(server: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "corral", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "corral-admin", "user": {"token": token}}],
        "contexts": [{"name": "corral", "context": {"cluster": "corral", "user": "corral-admin"}}],
        "current-context": "corral",
    }
