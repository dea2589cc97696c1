"""Servers for the suite to judge: a local Corral process, or a container image.

``ServerProcess`` puts one model (and, when the catalog can build it, the embedding model ``EMBED_MODEL``) into a
temporary store with ``corral catalog apply``, starts ``corral serve``
on a free loopback port with its own ``OLLAMA_HOST``/``OLLAMA_MODELS``, waits until ``GET /`` answers 200 and
stops it (SIGTERM, then SIGKILL) on ``stop()``. Its log goes to a file whose tail is quoted when it fails.

``ContainerServer`` starts an image through testcontainers (imported lazily: the suite needs neither it nor
Docker unless ``--image`` is used) and raises ``ContainerUnavailable`` with a readable reason when either is
missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import yaml

DEFAULT_MODEL = "smollm2:135m"
# The embedding model the embedding cases prefer (``conftest.embed_model``); a started server gets it too when
# the catalog has it and it can be built (best effort: without it those cases run on the model under test).
EMBED_MODEL = "all-minilm:22m"
REPO_CATALOG = Path(__file__).resolve().parents[1] / "modelfiles" / "catalog.yaml"
CONTAINER_PORT = 11434


class ServerStartError(RuntimeError):
    """The server under test did not come up; the message quotes the end of its log."""


class ContainerUnavailable(RuntimeError):
    """``--image`` cannot run here: testcontainers is not installed or no Docker engine answers."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float, alive: Any = None) -> None:
    """Poll ``GET url/`` until it answers 200; ``alive()`` returning False stops early (the process died)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise ServerStartError(f"server exited before answering on {url}")
        try:
            resp = httpx.get(url + "/", timeout=2.0)
            if resp.status_code == 200:
                return
            last = f"status {resp.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise ServerStartError(f"server at {url} not ready after {timeout:.0f} s ({last})")


def corral_command() -> list[str]:
    """How to run the ``corral`` CLI: the script next to this interpreter, else on PATH, else ``-c`` on the module."""
    script = Path(sys.executable).with_name("corral")
    if script.exists():
        return [str(script)]
    found = shutil.which("corral")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from server.cli import main; sys.exit(main())"]


def catalog_has(model: str, source: Path) -> bool:
    """Whether the catalog ``source`` has an entry named ``model``."""
    data = yaml.safe_load(source.read_text())
    return any(e.get("name") == model for e in data.get("models", []))


def single_model_catalog(model: str, source: Path, target: Path) -> Path:
    """Write a catalog holding only ``model``'s entry of ``source`` (paths made absolute) to ``target``."""
    data = yaml.safe_load(source.read_text())
    entries = [e for e in data.get("models", []) if e.get("name") == model]
    if not entries:
        raise ServerStartError(f"{source} has no entry named {model!r}")
    entry = dict(entries[0])
    entry["source"] = str((source.parent / entry["source"]).resolve())
    entry.pop("preload", None)
    target.write_text(yaml.safe_dump({"version": data.get("version", 1), "models": [entry]}))
    return target


class LocalServer:
    """A server subprocess with a private temporary folder (store, log) on a free loopback port; subclasses
    start it. Use as a context manager or call ``start()``/``stop()``. ``url`` is valid after ``start()``.

    ``stop`` sends SIGTERM, then ``kill`` after 15 s; a log inside the temporary folder is copied next to it
    (``<prefix><port>.log`` in the system temp folder) before the folder is removed.
    """

    prefix = "corral-local-server-"
    log_name = "server.log"

    def __init__(
        self,
        model: str,
        *,
        catalog: Path = REPO_CATALOG,
        log_path: Path | None = None,
        startup_timeout: float = 180.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.model = model
        self.catalog = catalog
        self.startup_timeout = startup_timeout
        self.extra_env = env or {}
        self._tmp = tempfile.TemporaryDirectory(prefix=self.prefix)
        self.root = Path(self._tmp.name)
        self.log_path = log_path or self.root / self.log_name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        """The caller's environment without its OLLAMA_/CORRAL_ settings, pointed at this server's port and
        store, plus ``env``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "CORRAL_"))}
        env.update({"OLLAMA_HOST": f"127.0.0.1:{self.port}", "OLLAMA_MODELS": str(self.root / "models")})
        env.update(self.extra_env)
        return env

    def _run(self, argv: list[str]) -> int:
        """Run a command with this server's environment, its output appended to the log; returns its status."""
        with self.log_path.open("ab") as log:
            done = subprocess.run(
                argv, env=self._env(), stdout=log, stderr=subprocess.STDOUT, timeout=self.startup_timeout, check=False
            )
        return done.returncode

    def _launch(self, argv: list[str], **popen: Any) -> None:
        """Start the server process (output to the log) and wait for ``GET /`` 200; on failure it is stopped
        and ``ServerStartError`` carries the log's tail."""
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(argv, env=self._env(), stdout=log_file, stderr=subprocess.STDOUT, **popen)
        try:
            wait_ready(self.url, self.startup_timeout, alive=self.alive)
        except ServerStartError as exc:
            self.stop()
            raise ServerStartError(f"{exc}\n{self.log_tail()}") from None

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.kill()

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then ``_kill`` after 15 s) and remove the temporary folder."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._kill(proc)
                proc.wait(timeout=5)
        self._after_stop(proc)
        if self.log_path.is_relative_to(self.root) and self.log_path.exists():
            kept = Path(tempfile.gettempdir()) / f"{self.prefix}{self.port}.log"
            shutil.copyfile(self.log_path, kept)
            self.log_path = kept
        self._tmp.cleanup()

    def _after_stop(self, proc: subprocess.Popen[bytes] | None) -> None:
        """Clean up what the server process may have left behind (nothing by default)."""

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"


class ServerProcess(LocalServer):
    """A ``corral serve`` subprocess with a private temporary store holding ``model``."""

    prefix = "corral-conformance-"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        catalog: Path = REPO_CATALOG,
        log_path: Path | None = None,
        startup_timeout: float = 180.0,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(model, catalog=catalog, log_path=log_path, startup_timeout=startup_timeout, env=env)

    def start(self) -> None:
        """Fill the store, start the server and wait for ``GET /`` 200; raises ``ServerStartError``."""
        catalog = single_model_catalog(self.model, self.catalog, self.root / "catalog.yaml")
        code = self._run([*corral_command(), "catalog", "apply", str(catalog)])
        if code != 0:
            raise ServerStartError(f"`corral catalog apply` failed ({code}):\n{self.log_tail()}")
        if self.model != EMBED_MODEL and catalog_has(EMBED_MODEL, self.catalog):
            self._apply_extra(EMBED_MODEL)
        self._launch([*corral_command(), "serve"])

    def _apply_extra(self, model: str) -> None:
        """Add ``model`` to the store if the catalog can build it here; a failure is only logged."""
        catalog = single_model_catalog(model, self.catalog, self.root / f"catalog-{model.replace(':', '-')}.yaml")
        self._run([*corral_command(), "catalog", "apply", str(catalog)])


class ContainerServer:
    """A container started from ``image`` with port 11434 published; ``url`` is valid after ``start()``.

    ``pull_model`` asks the container to ``/api/pull`` the model when its ``/api/tags`` lacks it (an
    ``ollama/ollama`` image starts empty; a Corral image may ship its models).
    """

    def __init__(self, image: str, model: str = DEFAULT_MODEL, *, startup_timeout: float = 300.0) -> None:
        self.image = image
        self.model = model
        self.startup_timeout = startup_timeout
        self.url = ""
        self._container: Any = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start the container and wait for ``GET /`` 200; ``ContainerUnavailable`` when Docker is missing."""
        try:
            from testcontainers.core.container import DockerContainer  # type: ignore[import-not-found]
        except ImportError:
            raise ContainerUnavailable(
                "--image needs the 'testcontainers' package: pip install testcontainers"
            ) from None
        container = DockerContainer(self.image).with_exposed_ports(CONTAINER_PORT)
        container = container.with_env("OLLAMA_HOST", f"0.0.0.0:{CONTAINER_PORT}")
        try:
            container.start()
        except Exception as exc:  # docker.errors.DockerException and friends; the SDK has no common base we import
            raise ContainerUnavailable(f"cannot start {self.image} (is a Docker engine running?): {exc}") from None
        self._container = container
        host = container.get_container_host_ip()
        self.url = f"http://{host}:{container.get_exposed_port(CONTAINER_PORT)}"
        try:
            wait_ready(self.url, self.startup_timeout)
            self._ensure_model()
        except Exception:
            self.stop()
            raise

    def _ensure_model(self) -> None:
        tags = httpx.get(self.url + "/api/tags", timeout=30).json()
        names = {m.get("name") for m in tags.get("models") or []}
        if self.model in names or f"{self.model}:latest" in names:
            return
        resp = httpx.post(
            self.url + "/api/pull", json={"model": self.model, "stream": False}, timeout=self.startup_timeout
        )
        if resp.status_code != 200:
            raise ServerStartError(f"pulling {self.model} into {self.image} failed: {resp.status_code} {resp.text}")

    def stop(self) -> None:
        """Stop and remove the container."""
        container, self._container = self._container, None
        if container is not None:
            container.stop()
