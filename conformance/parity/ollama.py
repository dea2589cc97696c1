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
from pathlib import Path

import yaml

from conformance.harness import REPO_CATALOG, LocalServer, ServerStartError

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


class OllamaServer(LocalServer):
    """``ollama serve`` with a private temporary store and home, serving ``model`` under its catalog name."""

    prefix = "corral-parity-ollama-"
    log_name = "ollama.log"

    def __init__(
        self,
        binary: Path,
        model: str,
        *,
        catalog: Path = REPO_CATALOG,
        log_path: Path | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        super().__init__(model, catalog=catalog, log_path=log_path, startup_timeout=startup_timeout)
        self.binary = binary
        self.extra_env = {"HOME": str(self.root / "home")}

    def start(self) -> None:
        """Start the server, wait for ``GET /`` 200 and import the model; raises ``ServerStartError``."""
        (self.root / "home").mkdir()
        try:
            # Its own session, so that a kill also reaches the runners `ollama serve` starts per model.
            self._launch([str(self.binary), "serve"], start_new_session=True)
        except OSError as exc:
            self.stop()
            raise ServerStartError(f"cannot run {self.binary}: {exc}") from None
        try:
            self._import_model()
        except ServerStartError as exc:
            self.stop()
            raise ServerStartError(f"{exc}\n{self.log_tail()}") from None

    def _import_model(self) -> None:
        modelfile = stage_modelfile(self.model, self.root / "import", self.catalog)
        code = self._run([str(self.binary), "create", self.model, "-f", str(modelfile)])
        if code != 0:
            raise ServerStartError(f"`ollama create {self.model}` failed ({code})")

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)

    def _after_stop(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):  # a runner left behind by the server it belonged to
                os.killpg(proc.pid, signal.SIGKILL)
