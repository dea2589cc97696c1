"""Run a rendered pod's containers as local processes: volumes become folders, container paths in commands and
env become those folders, the container port becomes a free loopback port. What this proves is the manifest's
commands, env and probes; what it cannot is isolation (no read-only root, no user switch, no cgroup limits)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

Manifest = dict[str, Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalPod:
    """One pod of ``deployment`` laid out under ``root``; ``config_maps`` by name give the configMap volumes."""

    deployment: Manifest
    config_maps: dict[str, Manifest]
    root: Path
    ports: dict[int, int] = field(default_factory=dict)

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        return spec

    def container(self, name: str) -> dict[str, Any]:
        for container in [*self.spec.get("initContainers", []), *self.spec["containers"]]:
            if container["name"] == name:
                return dict(container)
        raise KeyError(name)

    def prepare(self) -> None:
        """Create a folder per volume and put each configMap key mounted by subPath where the mount points."""
        volumes = {v["name"]: v for v in self.spec["volumes"]}
        for name, volume in volumes.items():
            kinds = set(volume) - {"name"}
            assert kinds <= {"persistentVolumeClaim", "emptyDir", "configMap"}, f"cannot emulate volume {name}"
            (self.root / "volumes" / name).mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:  # a whole-folder mount shows every key as a file
                for key, data in self.config_maps[volume["configMap"]["name"]]["data"].items():
                    (self.root / "volumes" / name / key).write_text(data)
        for container in [*self.spec.get("initContainers", []), *self.spec["containers"]]:
            for mount in container.get("volumeMounts", []):
                source = volumes[mount["name"]]
                if "configMap" in source and "subPath" in mount:
                    data = self.config_maps[source["configMap"]["name"]]["data"][mount["subPath"]]
                    target = self.host_path(container, mount["mountPath"])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(data)
                for port in container.get("ports", []):
                    self.ports.setdefault(int(port["containerPort"]), free_port())

    def _mounts(self, container: dict[str, Any]) -> list[tuple[str, Path]]:
        """Directory mounts (longest path first) as (container path, host folder)."""
        mounts = [
            (m["mountPath"].rstrip("/"), self.root / "volumes" / m["name"])
            for m in container.get("volumeMounts", [])
            if "subPath" not in m
        ]
        return sorted(mounts, key=lambda item: len(item[0]), reverse=True)

    def host_path(self, container: dict[str, Any], path: str) -> Path:
        for mount_path, folder in self._mounts(container):
            if path == mount_path or path.startswith(mount_path + "/"):
                return folder / path[len(mount_path) :].lstrip("/")
        raise AssertionError(f"{path} is on the container's root filesystem, which is read-only")

    def translate(self, container: dict[str, Any], text: str) -> str:
        """Container paths to host folders, ``0.0.0.0:<containerPort>`` to ``127.0.0.1:<local port>``."""
        mounts = dict(self._mounts(container))
        if mounts:
            # One pass, longest mount first: a host folder may itself contain a mounted path (/tmp/...).
            pattern = "|".join(re.escape(path) for path in mounts)
            text = re.sub(rf"(?<![\w/])({pattern})(?=/|$|:)", lambda m: str(mounts[m.group(1)]), text)
        return re.sub(
            r"0\.0\.0\.0:(\d+)", lambda m: f"127.0.0.1:{self.ports.get(int(m.group(1)), int(m.group(1)))}", text
        )

    def env(self, container: dict[str, Any]) -> dict[str, str]:
        """Only the manifest's env (as a container would have it), plus PATH finding this environment's ``corral``."""
        env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        for item in container.get("env", []):
            assert "value" in item, f"env {item['name']} comes from a secret or field: not emulated"
            env[item["name"]] = self.translate(container, str(item["value"]))
        return env

    def argv(self, container: dict[str, Any]) -> list[str]:
        return [self.translate(container, part) for part in [*container["command"], *container.get("args", [])]]

    def run(self, name: str, timeout: float) -> subprocess.CompletedProcess[str]:
        container = self.container(name)
        return subprocess.run(
            self.argv(container), env=self.env(container), capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self, name: str, log: Path) -> subprocess.Popen[bytes]:
        container = self.container(name)
        with log.open("wb") as out:
            return subprocess.Popen(self.argv(container), env=self.env(container), stdout=out, stderr=subprocess.STDOUT)

    def probe_url(self, container: dict[str, Any], probe: str) -> str:
        get = container[probe]["httpGet"]
        port = get["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in container["ports"] if p["name"] == port)
        return f"http://127.0.0.1:{self.ports[int(port)]}{get['path']}"

    def wait_probe(self, name: str, probe: str, process: subprocess.Popen[bytes]) -> httpx.Response:
        """Poll like the kubelet: success is a status in [200, 400); give up after the probe's own budget."""
        container = self.container(name)
        settings = container[probe]
        budget = float(settings.get("failureThreshold", 3)) * float(settings.get("periodSeconds", 10))
        deadline = time.monotonic() + budget
        url = self.probe_url(container, probe)
        last: object = None
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{name} exited with {process.returncode} before {probe} passed"
            try:
                response = httpx.get(url, timeout=float(settings.get("timeoutSeconds", 1)))
                if 200 <= response.status_code < 400:
                    return response
                last = response.status_code
            except httpx.TransportError as exc:
                last = exc
            time.sleep(0.25)
        raise AssertionError(f"{probe} {url} did not pass within {budget:.0f}s (last: {last})")
