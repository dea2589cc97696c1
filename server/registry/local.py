"""A CNCF distribution registry on loopback, for tests, benchmarks and trying pulls and pushes locally.

It runs Debian's ``docker-registry`` binary (the CNCF distribution registry, 2.8 in bookworm;
``apt-get install docker-registry``) with a generated config: filesystem storage under ``root``, the address
``127.0.0.1:<port>``, a fixed HTTP secret (so upload sessions survive a restart) and, optionally, an ``auth``
section (``htpasswd`` or ``token``, as the registry's own configuration spells them). ``kill`` is a
``kill -9``; ``start`` again brings the same registry back with the same content.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

BINARY_NAMES = ("docker-registry", "registry")


def find_binary() -> str | None:
    """The registry binary on PATH, or None."""
    return next((path for name in BINARY_NAMES if (path := shutil.which(name))), None)


class LocalRegistry:
    """One registry process. ``url`` is ``http://127.0.0.1:<port>``; ``host`` is what goes in model names."""

    def __init__(self, root: Path, port: int, *, auth: dict[str, Any] | None = None, binary: str | None = None) -> None:
        found = binary or find_binary()
        if found is None:
            raise FileNotFoundError("docker-registry is not installed (apt-get install docker-registry)")
        self.binary = found
        self.root = root
        self.port = port
        self.auth = auth
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "corral-local-registry"},
        }
        if self.auth:
            config["auth"] = self.auth
        return config

    def start(self, timeout: float = 60.0) -> None:
        """Start the process and wait until ``/v2/`` answers (200, or 401 behind auth)."""
        self.root.mkdir(parents=True, exist_ok=True)
        config_path = self.root / "config.yml"
        config_path.write_text(json.dumps(self.config(), indent=2))  # JSON is YAML
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "serve", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited at start; see {self.log_path}:\n{self._log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/", timeout=2).status_code in (200, 401):
                    return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"docker-registry did not answer within {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """``kill -9`` the registry (and wait for it to be gone)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def __enter__(self) -> LocalRegistry:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
