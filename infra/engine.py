"""Run Corral's Pulumi program through the real Pulumi engine (the CLI and the Kubernetes provider plugin built
by ``infra/toolchain``), offline, with the Automation API.

Every run gets a fresh working folder: a local file backend, its own ``PULUMI_HOME`` with the provider plugin
installed from the local binary, no update checks and no plugin downloads. Two entry points:

* :func:`render` runs a real ``preview`` and ``up`` with the provider in render-to-directory mode
  (``kubernetes:renderYamlToDirectory``): nothing is deployed, the provider writes the manifests it would apply,
  and they come back as dicts.
* :func:`up` deploys to the cluster a kubeconfig points at.

The program is an Automation API inline program, so no language host is needed: by default
``infra.program.program(infra.program.load_stack(stack))``; tests may pass their own.

Policy packs: the CLI runs a Python pack folder through the Python language host, which the Go module proxy
does not serve at any version that matches the CLI. But the CLI also accepts an executable as a policy pack
(a binary analyzer plugin, given the engine's address); each run writes a two-line one that starts the SDK's
own policy entry point (``python -m pulumi.policy``) on the pack folder with this interpreter. So the pack is
enforced by the real engine, by the same Python that runs this module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.toolchain.tools import locate, read_versions

PROJECT = "corral"
REPO = Path(__file__).resolve().parents[1]
POLICY_PACK = REPO / "infra" / "policy_pack"
# The provider plugin the pulumi-kubernetes Python package asks for; build.sh builds exactly this one.
PROVIDER_NAME = "kubernetes"

Program = Callable[[], None]


class EngineError(RuntimeError):
    """A Pulumi operation failed; the message holds the engine's own output."""


class PolicyFailure(EngineError):
    """The engine ran a policy pack and it reported mandatory violations (listed in the message)."""


@dataclass(frozen=True)
class Rendered:
    """What a render produced: the manifests (one dict per object, in file order), the stack outputs and the
    number of resources the preview planned to create."""

    manifests: list[dict[str, Any]]
    outputs: dict[str, Any]
    planned: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployed:
    """What ``up`` did: its stack outputs and the resource changes (``{"create": 7}``)."""

    outputs: dict[str, Any]
    changes: dict[str, int]


def offline_environment(workdir: Path) -> dict[str, str]:
    """The environment for the CLI: local state under ``workdir``, no network, no version checks."""
    return {
        "PULUMI_HOME": str(workdir / "pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{workdir / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "corral-offline",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        # The provider must never pick up a developer's real cluster by accident.
        "KUBECONFIG": str(workdir / "no-kubeconfig"),
    }


def default_program(stack: str, stacks_dir: Path | None = None) -> Program:
    """The repository's program for ``stack`` (settings read now, so bad settings fail before the engine runs)."""
    from infra.program import load_stack, program

    settings = load_stack(stack, stacks_dir)
    return lambda: program(settings)


def render(
    stack: str,
    program: Program | None = None,
    workdir: Path | None = None,
    stacks_dir: Path | None = None,
    policy_pack: Path | None = None,
) -> Rendered:
    """Preview and ``up`` ``stack`` with the provider writing manifests to a folder instead of a cluster.

    With ``policy_pack``, the preview runs that pack inside the engine; a mandatory violation raises
    :class:`PolicyFailure` (with the engine's report) before anything is rendered. Raises :class:`EngineError`
    with the engine's output if preview or up fails otherwise, and :class:`infra.toolchain.tools.ToolMissing`
    if the CLI or provider is not built.
    """
    program = program or default_program(stack, stacks_dir)
    with _workspace(workdir) as folder:
        packs = [str(_policy_runner(folder, policy_pack))] if policy_pack else None
        out = folder / "rendered"
        config = {"kubernetes:renderYamlToDirectory": str(out)}
        with _stack(stack, program, folder, config) as (pulumi_stack, log):
            preview = _run(
                "preview", log, lambda: pulumi_stack.preview(color="never", on_output=log.append, policy_packs=packs)
            )
            result = _run("up", log, lambda: pulumi_stack.up(color="never", on_output=log.append))
            outputs = {key: value.value for key, value in result.outputs.items()}
        return Rendered(read_manifests(out), outputs, dict(preview.change_summary))


def up(
    stack: str,
    kubeconfig: Path,
    program: Program | None = None,
    workdir: Path | None = None,
    stacks_dir: Path | None = None,
    skip_await: bool = False,
) -> Deployed:
    """Deploy ``stack`` to the cluster of ``kubeconfig``. With ``skip_await`` the provider does not wait for
    objects to become ready (``pulumi.com/skipAwait``), for clusters where pods cannot start."""
    program = program or default_program(stack, stacks_dir)
    if skip_await:
        program = _with_skip_await(program)
    with _workspace(workdir) as folder:
        config = {"kubernetes:kubeconfig": str(kubeconfig)}
        with _stack(stack, program, folder, config) as (pulumi_stack, log):
            result = _run("up", log, lambda: pulumi_stack.up(color="never", on_output=log.append))
        changes = dict(result.summary.resource_changes or {})
        return Deployed({key: value.value for key, value in result.outputs.items()}, changes)


def read_manifests(folder: Path) -> list[dict[str, Any]]:
    """Every YAML document the provider wrote under ``folder`` (``0-crd/`` first, then ``1-manifests/``)."""
    manifests: list[dict[str, Any]] = []
    for path in sorted(folder.rglob("*.yaml")):
        manifests.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return manifests


@contextmanager
def _workspace(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="corral-pulumi-") as folder:
        yield Path(folder)


@contextmanager
def _stack(stack: str, program: Program, folder: Path, config: dict[str, str]) -> Iterator[tuple[Any, list[str]]]:
    """A fresh stack named ``stack`` in a local backend under ``folder``, with the provider plugin installed."""
    from pulumi import automation as auto

    env = offline_environment(folder)
    (folder / "state").mkdir(exist_ok=True)
    cli = locate("bin/pulumi")
    _install_provider(cli, env)
    saved = {key: os.environ.get(key) for key in env}
    # The inline program runs in this process: the SDK reads some of these variables from os.environ.
    os.environ.update(env)
    try:
        workspace_options = auto.LocalWorkspaceOptions(
            work_dir=str(folder),
            pulumi_home=env["PULUMI_HOME"],
            env_vars=env,
            project_settings=auto.ProjectSettings(
                name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=env["PULUMI_BACKEND_URL"])
            ),
            pulumi_command=auto.PulumiCommand(root=str(cli.parent.parent), skip_version_check=True),
        )
        pulumi_stack = auto.create_stack(stack, project_name=PROJECT, program=program, opts=workspace_options)
        for key, value in config.items():
            pulumi_stack.set_config(key, auto.ConfigValue(value=value))
        yield pulumi_stack, []
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _install_provider(cli: Path, env: dict[str, str]) -> None:
    binary = locate("pulumi-resource-kubernetes")
    version = read_versions()["K8S_PROVIDER_VERSION"]
    command = [str(cli), "plugin", "install", "resource", PROVIDER_NAME, version, "-f", str(binary)]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise EngineError(f"installing the Kubernetes provider plugin failed:\n{done.stdout}{done.stderr}")


def _run(operation: str, log: list[str], call: Callable[[], Any]) -> Any:
    from pulumi import automation as auto

    try:
        return call()
    except auto.CommandError as exc:
        output = "\n".join(log).strip() or str(exc)
        if "mandatory" in output and "Policies:" in output:
            raise PolicyFailure(f"pulumi {operation}: the policy pack reported violations:\n{output}") from exc
        raise EngineError(f"pulumi {operation} failed:\n{output}") from exc


def _policy_runner(folder: Path, pack: Path) -> Path:
    """An executable that serves the Python policy pack in ``pack`` to the engine, with this interpreter.

    The CLI launches an executable policy pack as a binary analyzer plugin, passing the engine's address; this
    one starts the SDK's policy entry point (``python -m pulumi.policy``) on the pack folder."""
    runner = folder / "policy-runner" / pack.name
    runner.parent.mkdir(exist_ok=True)
    runner.write_text(f'#!/bin/sh\ncd "{pack}" && exec "{sys.executable}" -u -m pulumi.policy "$1" .\n')
    runner.chmod(0o755)
    return runner


def _with_skip_await(program: Program) -> Program:
    import pulumi

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        metadata = args.props.get("metadata")
        if not args.type_.startswith("kubernetes:") or not isinstance(metadata, dict):
            return None
        annotations = {**(metadata.get("annotations") or {}), "pulumi.com/skipAwait": "true"}
        return pulumi.ResourceTransformResult(
            {**args.props, "metadata": {**metadata, "annotations": annotations}}, args.opts
        )

    def wrapped() -> None:
        pulumi.runtime.register_resource_transform(transform)
        program()

    return wrapped
