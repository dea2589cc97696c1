"""Locate the Go-built deployment tools in their cache, or say exactly which is missing and how to build it.

Every tool is built by ``infra/toolchain/build.sh TOOL`` (``make tools`` builds them all) into
``<cache>/<tool>-<version>/``, where ``<cache>`` is ``$CORRAL_TOOLS_CACHE`` or ``~/.cache/corral/tools``. A
folder counts only when its ``.complete`` stamp exists: the build script writes it last.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

TOOLCHAIN_DIR = Path(__file__).resolve().parent
BUILD_SCRIPT = TOOLCHAIN_DIR / "build.sh"
VERSIONS_FILE = TOOLCHAIN_DIR / "versions.env"


class ToolMissing(RuntimeError):
    """A tool is not in the cache; the message names the binary and the command that builds it."""


@dataclass(frozen=True)
class Tool:
    """One build unit of ``build.sh``: a name, the version key in ``versions.env`` and the files it yields."""

    name: str
    version_key: str
    binaries: tuple[str, ...]

    @property
    def version(self) -> str:
        return read_versions()[self.version_key]

    def folder(self) -> Path:
        """The cache folder of this tool's pinned version (it may not exist yet)."""
        return tools_cache() / f"{self.name}-{self.version}"

    def is_built(self) -> bool:
        return (self.folder() / ".complete").is_file()

    def build_command(self) -> str:
        return f"bash {BUILD_SCRIPT.relative_to(TOOLCHAIN_DIR.parents[1])} {self.name}   (or: make tools)"


TOOLS: tuple[Tool, ...] = (
    Tool("pulumi", "PULUMI_VERSION", ("bin/pulumi",)),
    Tool("kubernetes-provider", "K8S_PROVIDER_VERSION", ("pulumi-resource-kubernetes",)),
    Tool("etcd", "ETCD_VERSION", ("etcd",)),
    Tool("kubernetes", "KUBERNETES_VERSION", ("kube-apiserver", "kube-scheduler", "kube-controller-manager")),
    Tool("kwok", "KWOK_VERSION", ("kwok", "stages")),
    Tool("language-python", "LANGUAGE_PYTHON_VERSION", ("pulumi-language-python",)),
)


def tools_cache() -> Path:
    """The cache root: ``$CORRAL_TOOLS_CACHE`` if set, else ``~/.cache/corral/tools``."""
    configured = os.environ.get("CORRAL_TOOLS_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "corral" / "tools"


def read_versions() -> dict[str, str]:
    """The pinned versions from ``versions.env`` (``KEY=value`` lines; ``#`` starts a comment)."""
    versions: dict[str, str] = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def tool(name: str) -> Tool:
    """The tool called ``name``; ``KeyError`` names the known ones."""
    for candidate in TOOLS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown tool {name!r}; known: {', '.join(t.name for t in TOOLS)}")


def locate(binary: str) -> Path:
    """The path of ``binary`` (for example ``kube-apiserver``) in the cache.

    Raises :class:`ToolMissing` naming the binary, its version, where it was looked for and the build command.
    """
    owner = next((t for t in TOOLS if binary in t.binaries), None)
    if owner is None:
        raise KeyError(f"no tool provides {binary!r}")
    path = owner.folder() / binary
    if not owner.is_built() or not path.exists():
        raise ToolMissing(
            f"{binary} ({owner.name} {owner.version}) is not built: looked in {owner.folder()}; "
            f"build it with `{owner.build_command()}`"
        )
    return path


def missing(names: tuple[str, ...] | None = None) -> list[Tool]:
    """The tools (all of them, or those named) that are not in the cache."""
    wanted = TOOLS if names is None else tuple(tool(n) for n in names)
    return [t for t in wanted if not t.is_built()]


def build(name: str) -> None:
    """Build one tool with ``build.sh`` (a no-op when cached); ``CalledProcessError`` if the build fails."""
    subprocess.run(["bash", str(BUILD_SCRIPT), tool(name).name], check=True)
