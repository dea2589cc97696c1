"""The suite catches a broken server: selected cases run against ``BrokenServer`` and must fail with a message
that says what was expected and what was observed, while a correct route still passes."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.cli import SUITE_DIR
from conformance.tests.broken_server import BrokenServer

# case -> (expected outcome, text its failure message must contain)
CASES: dict[str, tuple[str, str]] = {
    "test_system.py::test_root_get": ("passed", ""),
    "test_system.py::test_version_get": ("failed", "/api/version.version type: expected string, observed 123"),
    "test_models.py::test_tags_item_types": ("failed", "/api/tags item.size type: expected integer, observed '98MB'"),
    "test_errors.py::test_empty_model[chat]": ("failed", "POST /api/chat status: expected 400, observed 404"),
    "test_openai_chat.py::test_stream_sse_framing": (
        "failed",
        "SSE stream terminator: expected last event 'data: [DONE]'",
    ),
    "test_openai_completions.py::test_stream_sse_framing": ("failed", "expected last event 'data: [DONE]'"),
}
REPO = SUITE_DIR.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def broken() -> Iterator[BrokenServer]:
    with BrokenServer() as server:
        yield server


@pytest.fixture(scope="module")
def run(broken: BrokenServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, tuple[str, str]], str]:
    """Run the selected cases in a child pytest; returns {case: (outcome, message)} and the Markdown report."""
    out = tmp_path_factory.mktemp("broken")
    junit, report = out / "junit.xml", out / "parity.md"
    argv = [sys.executable, "-m", "pytest", *(str(SUITE_DIR / case) for case in CASES)]
    argv += ["-c", str(SUITE_DIR / "pytest.ini"), "--rootdir", str(SUITE_DIR), "-q"]
    argv += ["--url", broken.url, "--junitxml", str(junit), "--parity-report", str(report)]
    done = subprocess.run(argv, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, f"child pytest: expected exit 1, observed {done.returncode}\n{done.stdout[-3000:]}"
    return _outcomes(junit), report.read_text()


def _outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        outcome = "passed" if failure is None else "failed"
        message = "" if failure is None else failure.get("message", "")
        found[f"{module}.py::{case.get('name')}"] = (outcome, message)
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_case_outcome(run: tuple[dict[str, tuple[str, str]], str], case: str) -> None:
    outcomes, _ = run
    assert case in outcomes, f"{case}: expected in the JUnit XML, observed only {sorted(outcomes)}"
    outcome, message = outcomes[case]
    wanted, text = CASES[case]
    assert outcome == wanted, f"{case}: expected {wanted}, observed {outcome} ({message})"
    assert text in message, f"{case}: expected a message containing {text!r}, observed {message!r}"


def test_report_lists_failures(run: tuple[dict[str, tuple[str, str]], str]) -> None:
    _, report = run
    assert "Verdict: **FAIL**" in report, report
    assert "| `test_system.py::test_version_get` | §0 | required |" in report, report
    assert "expected string, observed 123" in report, report
    assert "| system (/, version, CORS) | 1 | 1 | 0 | 1 |" in report, report


def test_cli_gate_fails(broken: BrokenServer, tmp_path: Path) -> None:
    report = tmp_path / "parity.md"
    argv = [sys.executable, "-m", "conformance", "--url", broken.url, "--only", "system", "--report", str(report)]
    argv += ["--junit", str(tmp_path / "junit.xml"), "-q"]
    done = subprocess.run(argv, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, f"exit code: expected 1, observed {done.returncode}\n{done.stdout[-3000:]}"
    assert "test_version_get" in report.read_text()
    assert (tmp_path / "junit.xml").exists()
