"""A real Ollama for the parity run: built from the Go module proxy, serving one catalog model.

``build_ollama(version)`` runs ``build-ollama.sh`` (next to this module), which caches the build under
``${CORRAL_TOOLS_CACHE:-~/.cache/corral/tools}/ollama-<version>/`` and prints the binary's path.
``OllamaServer`` starts ``ollama serve`` on a free loopback port with a temporary store and home, imports the
model with ``ollama create`` from the same Modelfile and weights package the catalog names (so both servers
serve the same GGUF with the same template and parameters) and stops it (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

import yaml

from conformance.harness import REPO_CATALOG, ServerStartError, free_port, wait_ready

BUILD_SCRIPT = Path(__file__).resolve().parent / "build-ollama.sh"
DEFAULT_VERSION = "0.24.0"


class BuildError(RuntimeError):
    """The Ollama build failed; the build script's own messages went to stderr already."""


def build_ollama(version: str = DEFAULT_VERSION, *, timeout: float = 3600.0) -> Path:
    """Build (or find cached) Ollama ``version``; returns the binary. Progress goes to this process's stderr."""
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), version], stdout=subprocess.PIPE, text=True, timeout=timeout, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BuildError(f"{BUILD_SCRIPT.name} {version} failed with exit status {done.returncode}")
    return Path(lines[-1])


def model_source(model: str, catalog: Path = REPO_CATALOG) -> tuple[Path, Path, str | None]:
    """The catalog entry of ``model``: its Modelfile, the weights path its FROM names (relative to the
    Modelfile's folder), and the package that ships them (None when the entry names no package)."""
    data = yaml.safe_load(catalog.read_text())
    entry = next((e for e in data.get("models", []) if e.get("name") == model), None)
    if entry is None:
        raise ServerStartError(f"{catalog} has no entry named {model!r}")
    modelfile = (catalog.parent / entry["source"]).resolve()
    weights = entry.get("weights") or {}
    return modelfile, Path(str(weights.get("file", ""))), weights.get("package")


def stage_modelfile(model: str, into: Path, catalog: Path = REPO_CATALOG) -> Path:
    """Copy ``model``'s Modelfile into ``into`` with its weights beside it (linked from the package folder, or
    written by the package's ``assemble(path)``); returns the copied Modelfile."""
    modelfile, weights_file, package = model_source(model, catalog)
    into.mkdir(parents=True, exist_ok=True)
    target = shutil.copy(modelfile, into / modelfile.name)
    for line in modelfile.read_text().splitlines():
        if line.upper().startswith("FROM "):
            relative = line[5:].strip().strip('"')
            break
    else:
        raise ServerStartError(f"{modelfile} has no FROM line")
    local = (modelfile.parent / relative).resolve()
    staged = into / relative
    staged.parent.mkdir(parents=True, exist_ok=True)
    if local.exists():
        staged.symlink_to(local)
    elif package:
        _weights_from_package(package, weights_file.name, staged)
    else:
        raise ServerStartError(f"{modelfile}: FROM {relative} does not exist and the catalog names no package")
    return Path(target)


def _weights_from_package(package: str, name: str, target: Path) -> None:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ServerStartError(f"weights package {package!r} is not installed (make setup installs it)")
    shipped = [Path(f) / name for f in spec.submodule_search_locations or [] if (Path(f) / name).exists()]
    if shipped:
        target.symlink_to(shipped[0])
        return
    module = importlib.import_module(package)
    if not hasattr(module, "assemble"):
        raise ServerStartError(f"package {package!r} neither ships {name} nor has assemble()")
    module.assemble(str(target))


class OllamaServer:
    """``ollama serve`` with a private temporary store and home, serving ``model`` under its catalog name.

    Use as a context manager or call ``start()``/``stop()``. ``url`` is valid after ``start()``.
    """

    def __init__(
        self,
        binary: Path,
        model: str,
        *,
        catalog: Path = REPO_CATALOG,
        log_path: Path | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.binary = binary
        self.model = model
        self.catalog = catalog
        self.startup_timeout = startup_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="corral-parity-ollama-")
        self.root = Path(self._tmp.name)
        self.log_path = log_path or self.root / "ollama.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "CORRAL_"))}
        env.update(
            {
                "HOME": str(self.root / "home"),
                "OLLAMA_HOST": f"127.0.0.1:{self.port}",
                "OLLAMA_MODELS": str(self.root / "models"),
            }
        )
        return env

    def start(self) -> None:
        """Start the server, wait for ``GET /`` 200 and import the model; raises ``ServerStartError``."""
        (self.root / "home").mkdir()
        try:
            with self.log_path.open("ab") as log_file:
                # Its own session, so that a kill also reaches the runners `ollama serve` starts per model.
                self._proc = subprocess.Popen(
                    [str(self.binary), "serve"],
                    env=self._env(),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            self.stop()
            raise ServerStartError(f"cannot run {self.binary}: {exc}") from None
        try:
            wait_ready(self.url, self.startup_timeout, alive=self.alive)
            self._import_model()
        except ServerStartError as exc:
            self.stop()
            raise ServerStartError(f"{exc}\n{self.log_tail()}") from None

    def _import_model(self) -> None:
        modelfile = stage_modelfile(self.model, self.root / "import", self.catalog)
        with self.log_path.open("ab") as log:
            created = subprocess.run(
                [str(self.binary), "create", self.model, "-f", str(modelfile)],
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=self.startup_timeout,
                check=False,
            )
        if created.returncode != 0:
            raise ServerStartError(f"`ollama create {self.model}` failed ({created.returncode})")

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 15 s) and remove the temporary store."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):  # a runner left behind by the server it belonged to
                os.killpg(proc.pid, signal.SIGKILL)
        if self.log_path.is_relative_to(self.root) and self.log_path.exists():
            kept = Path(tempfile.gettempdir()) / f"corral-parity-ollama-{self.port}.log"
            shutil.copyfile(self.log_path, kept)
            self.log_path = kept
        self._tmp.cleanup()

    def alive(self) -> bool:
        """Whether the server process is still running."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"
