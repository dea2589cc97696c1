"""``corral infra check``: the repository's stacks pass through the real engine, schemas and policies; broken
stacks fail naming the rule and the resource."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.check import StackReport, check_stack, format_report
from server.cli.infra import main as infra_main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CORRAL = Path(sys.executable).parent / "corral"


def _stack_copy(folder: Path, name: str, source: str, **changes: object) -> Path:
    """``stacks/Pulumi.<source>.yaml`` saved as ``Pulumi.<name>.yaml`` in ``folder`` with ``corral:`` keys
    replaced by ``changes`` (nested mappings are merged one level deep)."""
    document = yaml.safe_load((REPO / "stacks" / f"Pulumi.{source}.yaml").read_text())
    config = document["config"]
    for key, value in changes.items():
        full = f"corral:{key}"
        if isinstance(value, dict) and isinstance(config.get(full), dict):
            config[full] = {**config[full], **value}
        else:
            config[full] = value
    folder.mkdir(exist_ok=True)
    (folder / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(document))
    return folder


def test_both_stacks_pass_through_the_real_engine() -> None:
    done = subprocess.run([str(CORRAL), "infra", "check"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:] if line.strip()}
    assert rows["dev"][1] == "PASS" and rows["gpu"][1] == "PASS"
    assert "rendering through the Pulumi engine" in done.stderr


def test_a_broken_gpu_stack_fails_naming_each_rule_and_resource(tmp_path: Path) -> None:
    stacks = _stack_copy(
        tmp_path / "stacks",
        "broken",
        "gpu",
        image="registry.example.com/corral:latest",
        gpu={"count": 0},
        storage={"size": "1Mi"},
    )
    report = check_stack("broken", stacks)
    assert report.error is None, report.error
    assert not report.passed
    text = "\n".join(report.violations)
    assert "[gpu-limit] Deployment corral/corral" in text
    assert "[image-pinned] Deployment corral/corral" in text
    assert "[volume-size] PersistentVolumeClaim corral/" in text
    assert report.schema_errors == []
    # The same pack, enforced inside the engine's preview, stopped it with the same rules.
    assert report.engine_pack == "FAIL"
    engine_report = "\n".join(report.engine_pack_report)
    for rule in ("gpu-limit", "image-pinned", "volume-size"):
        assert f"[mandatory]  {rule}" in engine_report


def test_an_unknown_setting_fails_the_stack_naming_the_key(tmp_path: Path) -> None:
    stacks = _stack_copy(tmp_path / "stacks", "typo", "dev", replicaz=2)
    out = io.StringIO()
    assert infra_main(["check", "typo", "--stacks-dir", str(stacks)], out) == 1
    assert "unknown setting corral:replicaz" in out.getvalue()
    assert out.getvalue().splitlines()[1].split()[:2] == ["typo", "ERROR"]


def test_the_table_has_one_row_per_stack_and_every_failure_below_it() -> None:
    reports = [
        StackReport("dev", resources=6, gpus="none x 1", volume="2Gi", memory="0.40 GiB / no GPU"),
        StackReport("bad", resources=7, violations=["[image-pinned] Deployment corral/corral: uses :latest"]),
    ]
    text = format_report(reports)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["STACK", "RESULT", "OBJECTS"]
    assert lines[1].split()[:3] == ["dev", "PASS", "6"]
    assert lines[2].split()[:2] == ["bad", "FAIL"]
    assert lines[3] == "bad: [image-pinned] Deployment corral/corral: uses :latest"


def test_no_stacks_is_a_usage_error(tmp_path: Path) -> None:
    assert infra_main(["check", "--stacks-dir", str(tmp_path)], io.StringIO()) == 2
