"""The Go-built tools: where they are found, what a missing one says, and that the built ones are the pinned
versions (each binary is run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.toolchain import tools
from infra.toolchain.tools import TOOLS, ToolMissing, locate, read_versions

# What `make tools` builds (the language host is optional and built on request).
REQUIRED = ("pulumi", "kubernetes-provider", "etcd", "kubernetes", "kwok")


def test_versions_are_pinned_exactly() -> None:
    versions = read_versions()
    assert versions["PULUMI_VERSION"] == "v3.274.1"
    assert versions["K8S_PROVIDER_VERSION"] == "4.25.0"
    assert versions["KUBERNETES_VERSION"] == "v1.37.2"
    assert {t.version_key for t in TOOLS} <= set(versions)


def test_cache_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_TOOLS_CACHE", str(tmp_path))
    assert tools.tool("etcd").folder() == tmp_path / f"etcd-{read_versions()['ETCD_VERSION']}"
    monkeypatch.delenv("CORRAL_TOOLS_CACHE")
    assert tools.tools_cache() == Path.home() / ".cache" / "corral" / "tools"


def test_a_missing_tool_names_itself_and_its_build_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_TOOLS_CACHE", str(tmp_path))
    with pytest.raises(ToolMissing) as missing:
        locate("kube-scheduler")
    message = str(missing.value)
    assert "kube-scheduler (kubernetes v1.37.2) is not built" in message
    assert "bash infra/toolchain/build.sh kubernetes" in message
    assert [t.name for t in tools.missing(REQUIRED)] == list(REQUIRED)


def test_a_folder_without_its_stamp_does_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted build leaves no `.complete` stamp; such a folder is treated as missing."""
    monkeypatch.setenv("CORRAL_TOOLS_CACHE", str(tmp_path))
    folder = tools.tool("etcd").folder()
    folder.mkdir()
    (folder / "etcd").write_text("")
    with pytest.raises(ToolMissing):
        locate("etcd")


def test_unknown_names_are_refused() -> None:
    with pytest.raises(KeyError, match="known: pulumi"):
        tools.tool("helm")
    with pytest.raises(KeyError, match="no tool provides"):
        locate("kubectl")


def test_build_script_refuses_an_unknown_tool(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(tools.BUILD_SCRIPT), "helm"],
        env={"PATH": "/usr/bin:/bin:/usr/local/go/bin:/usr/local/bin", "CORRAL_TOOLS_CACHE": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "unknown tool 'helm'" in done.stderr
    assert list(tmp_path.iterdir()) == []


def _version_output(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    ("binary", "argv", "expected"),
    [
        ("bin/pulumi", ["version"], "v3.274.1"),
        ("pulumi-resource-kubernetes", ["-version"], "4.25.0"),
        ("etcd", ["--version"], "3.7.3"),
        ("kube-apiserver", ["--version"], "v1.37.2"),
        ("kube-scheduler", ["--version"], "v1.37.2"),
        ("kube-controller-manager", ["--version"], "v1.37.2"),
        ("kwok", ["--version"], "0.8.0"),
    ],
)
def test_built_binaries_run_and_report_the_pinned_version(binary: str, argv: list[str], expected: str) -> None:
    assert expected in _version_output([str(locate(binary)), *argv])


def test_kwok_stage_files_are_shipped_with_it() -> None:
    stages = sorted(p.name for p in locate("stages").glob("*.yaml"))
    assert stages, "no KWOK stage files"
    kinds = " ".join(p.read_text() for p in locate("stages").glob("*.yaml"))
    assert "kind: Stage" in kinds
