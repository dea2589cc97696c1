"""``corral infra check``: each stack through the real engine, schema validation, policies, one table row each.

For a stack: its settings are loaded (an unknown key fails here, naming it), the program is rendered by the
real Pulumi engine and Kubernetes provider (:func:`infra.engine.render`) with the policy pack enforced inside
the engine's preview, every manifest is validated strictly for each supported Kubernetes minor
(:mod:`infra.validation`) and the same policies run over the rendered objects (which names every violation even
when the engine stopped at the first failing preview). A stack passes when all of that succeeded with no
violation and no schema error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.validation import SUPPORTED_MINORS, validate_manifests

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STACKS_DIR = REPO / "stacks"
GIB = 1024**3


@dataclass
class StackReport:
    """The outcome for one stack: summary columns, and everything that made it fail."""

    stack: str
    resources: int = 0
    gpus: str = "-"
    volume: str = "-"
    memory: str = "-"
    violations: list[str] = field(default_factory=list)
    schema_errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    engine_pack: str = "-"
    engine_pack_report: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.error is None and not self.violations and not self.schema_errors and self.engine_pack != "FAIL"


def stack_names(stacks_dir: Path) -> list[str]:
    """Every stack with a ``Pulumi.<stack>.yaml`` in ``stacks_dir``, sorted."""
    names = sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in stacks_dir.glob("Pulumi.*.yaml"))
    if not names:
        raise FileNotFoundError(f"no Pulumi.<stack>.yaml files in {stacks_dir}")
    return names


def check_stacks(
    stacks: Sequence[str] | None = None,
    stacks_dir: Path | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[StackReport]:
    """Check the named stacks (default: all in ``stacks_dir``); ``ToolMissing`` if the engine is not built."""
    folder = stacks_dir or DEFAULT_STACKS_DIR
    return [check_stack(name, folder, progress) for name in (stacks or stack_names(folder))]


def check_stack(name: str, stacks_dir: Path, progress: Callable[[str], None] = lambda _: None) -> StackReport:
    """Render, validate and run the policies for one stack. Settings and engine failures become the report's
    ``error`` (the stack fails); a missing tool raises ``ToolMissing``."""
    from infra import engine
    from infra.program import load_stack, program

    report = StackReport(name)
    try:
        settings = load_stack(name, stacks_dir)
    except (ValueError, OSError) as exc:
        report.error = f"settings: {exc}"
        return report
    progress(f"{name}: rendering through the Pulumi engine, policy pack enforced ...")
    try:
        try:
            rendered = engine.render(name, program=lambda: program(settings), policy_pack=engine.POLICY_PACK)
            report.engine_pack = "pass"
        except engine.PolicyFailure as exc:
            # The engine stopped at the preview; render without the pack to report every rule on the objects.
            report.engine_pack = "FAIL"
            report.engine_pack_report = _policy_lines(str(exc))
            progress(f"{name}: the policy pack failed in the engine; rendering without it to list the violations")
            rendered = engine.render(name, program=lambda: program(settings))
    except engine.EngineError as exc:
        report.error = str(exc)
        return report
    manifests = rendered.manifests
    progress(
        f"{name}: {len(manifests)} objects; validating for Kubernetes {SUPPORTED_MINORS[0]}-{SUPPORTED_MINORS[-1]}"
    )
    for finding in validate_manifests(manifests):
        (report.skipped if finding.skipped else report.schema_errors).append(str(finding))
    report.violations = run_policies(manifests)
    if report.engine_pack == "FAIL" and not report.violations:
        report.violations = [f"[policy-pack] {line}" for line in report.engine_pack_report]
    _summarise(report, manifests)
    return report


def _policy_lines(engine_output: str) -> list[str]:
    """The violation lines of the engine's policy report (the indented lines under ``Policies:``)."""
    _, _, tail = engine_output.partition("Policies:")
    for end in ("Diagnostics:", "Outputs:", "Resources:"):
        tail = tail.partition(end)[0]
    return [line.strip() for line in tail.splitlines() if line.strip()] or [engine_output[-500:]]


def run_policies(manifests: list[dict[str, Any]]) -> list[str]:
    """Every policy violation over the rendered objects, as ``[rule] resource: message`` lines."""
    from infra.policies import check

    return [str(violation) for violation in check(manifests)]


def _summarise(report: StackReport, manifests: list[dict[str, Any]]) -> None:
    """The table columns, read from the rendered objects themselves (what the cluster would get)."""
    from infra.model_server.layout import GPU_MEMORY_ANNOTATION, MEMORY_ANNOTATION

    report.resources = len(manifests)
    claims = [m for m in manifests if m.get("kind") == "PersistentVolumeClaim"]
    if claims:
        report.volume = str(claims[0]["spec"]["resources"]["requests"]["storage"])
    deployments = [m for m in manifests if m.get("kind") == "Deployment"]
    if not deployments:
        return
    spec = deployments[0]["spec"]
    pod = spec["template"]
    limits = [c.get("resources", {}).get("limits", {}) for c in pod["spec"]["containers"]]
    gpus = {key: value for limit in limits for key, value in limit.items() if key.startswith("nvidia.com/")}
    replicas = spec.get("replicas", "HPA")
    report.gpus = (
        " + ".join(f"{value} {key}" for key, value in gpus.items()) + f" x {replicas}"
        if gpus
        else (f"none x {replicas}")
    )
    annotations = pod.get("metadata", {}).get("annotations", {})
    estimate = int(annotations.get(MEMORY_ANNOTATION, 0)) / GIB
    gpu_memory = int(annotations.get(GPU_MEMORY_ANNOTATION, 0)) / GIB
    report.memory = f"{estimate:.2f} / {gpu_memory:.0f} GiB" if gpu_memory else f"{estimate:.2f} GiB / no GPU"


def format_report(reports: Sequence[StackReport], verbose: bool = False) -> str:
    """The table (stack, result, objects, GPUs per pod x replicas, volume, memory estimate vs GPU memory, the
    policy pack's verdict inside the engine, number of problems), then every failure line."""
    header = (
        "STACK",
        "RESULT",
        "OBJECTS",
        "GPU/POD x REPLICAS",
        "VOLUME",
        "MEMORY EST / GPU MEM",
        "PACK",
        "VIOLATIONS",
    )
    rows = [header]
    for r in reports:
        result = "PASS" if r.passed else "ERROR" if r.error else "FAIL"
        problems = len(r.violations) + len(r.schema_errors) + (1 if r.error else 0)
        rows.append((r.stack, result, str(r.resources), r.gpus, r.volume, r.memory, r.engine_pack, str(problems)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    for r in reports:
        details = ([f"error: {r.error}"] if r.error else []) + r.violations + r.schema_errors
        if verbose:
            details += r.skipped + [f"engine policy report: {line}" for line in r.engine_pack_report]
        lines.extend(f"{r.stack}: {detail}" for detail in details)
    return "\n".join(lines) + "\n"
