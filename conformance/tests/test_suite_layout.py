"""The suite's own contract: enough cases, each pointing at a reference section, areas known to the report,
and the runner's exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance import cli
from conformance.areas import AREAS
from conformance.report import Outcome, ParityReport

PROBE = """
import sys, pytest
class Probe:
    def pytest_collection_finish(self, session):
        print("COLLECTED", len(session.items))
        for item in session.items:
            if item.get_closest_marker("ref") is None:
                print("NOREF", item.nodeid)
            print("MODULE", item.path.stem)
            versions = item.get_closest_marker("versions")
            if versions is not None:
                print("VERSIONS", item.nodeid, bool(versions.kwargs.get("why")), sorted(versions.kwargs))
sys.exit(pytest.main(sys.argv[1:], plugins=[Probe()]))
"""


@pytest.fixture(scope="module")
def collected() -> list[str]:
    argv = [sys.executable, "-c", PROBE, str(cli.SUITE_DIR), "-c", str(cli.SUITE_DIR / "pytest.ini")]
    argv += ["--rootdir", str(cli.SUITE_DIR), "--ignore", str(cli.SUITE_DIR / "tests"), "--collect-only", "-q"]
    done = subprocess.run(argv, cwd=cli.SUITE_DIR.parent, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout.splitlines()


def test_at_least_150_cases(collected: list[str]) -> None:
    count = int(next(line for line in collected if line.startswith("COLLECTED")).split()[1])
    assert count >= 150, f"cases: expected >= 150, observed {count}"


def test_every_case_has_a_reference_section(collected: list[str]) -> None:
    missing = [line for line in collected if line.startswith("NOREF")]
    assert missing == [], f"cases without @pytest.mark.ref: {missing}"


def test_every_module_is_an_area(collected: list[str]) -> None:
    modules = {line.split()[1].removeprefix("test_") for line in collected if line.startswith("MODULE")}
    assert modules == set(AREAS), f"areas: expected {sorted(AREAS)}, observed {sorted(modules)}"


def test_versioned_cases_say_why(collected: list[str]) -> None:
    versioned = [line.split()[1:] for line in collected if line.startswith("VERSIONS")]
    assert len(versioned) >= 6, f"versioned cases: expected >= 6, observed {versioned}"
    silent = [nodeid for nodeid, has_why, *_ in versioned if has_why != "True"]
    assert silent == [], f"versioned cases without why=: {silent}"


def test_bad_version_range_is_a_usage_error(tmp_path: Path) -> None:
    case = tmp_path / "test_bad.py"
    case.write_text('import pytest\n\n@pytest.mark.versions(since="soon")\ndef test_x():\n    pass\n')
    argv = [sys.executable, "-m", "pytest", str(case), "-p", "conformance.conftest", "--collect-only", "-q"]
    argv += ["--rootdir", str(tmp_path), "-c", str(cli.SUITE_DIR / "pytest.ini")]
    done = subprocess.run(argv, cwd=cli.SUITE_DIR.parent, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout[-2000:] + done.stderr[-2000:]
    assert "bad @pytest.mark.versions" in done.stderr + done.stdout


def test_bad_ollama_version_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--url", "http://127.0.0.1:9", "--ollama-version", "next"]) == cli.EXIT_USAGE
    assert "not an Ollama version" in capsys.readouterr().err


def test_image_without_testcontainers_exits_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "testcontainers", None)
    monkeypatch.setitem(sys.modules, "testcontainers.core.container", None)
    assert cli.main(["--image", "ollama/ollama"]) == cli.EXIT_NO_CONTAINER
    assert "testcontainers" in capsys.readouterr().err


def test_url_and_image_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--url", "http://x", "--image", "y"])
    assert caught.value.code == cli.EXIT_USAGE


def _report(*outcomes: tuple[str, bool]) -> ParityReport:
    report = ParityReport()
    for i, (outcome, optional) in enumerate(outcomes):
        report.outcomes[str(i)] = Outcome(str(i), "chat", "1.3", optional, outcome)
    return report


@pytest.mark.parametrize(
    ("code", "outcomes", "expected"),
    [
        (0, [("passed", False)], cli.EXIT_OK),
        (1, [("passed", False), ("failed", True)], cli.EXIT_OK),
        (1, [("failed", False)], cli.EXIT_FAILED),
        (4, [], cli.EXIT_USAGE),
        (12, [], cli.EXIT_NO_SERVER),
        (5, [], cli.EXIT_NO_SERVER),
    ],
    ids=["all-pass", "optional-fail", "required-fail", "usage", "unreachable", "nothing-selected"],
)
def test_exit_code(code: int, outcomes: list[tuple[str, bool]], expected: int) -> None:
    assert cli.exit_code(code, _report(*outcomes)) == expected


def test_report_markdown_rows() -> None:
    report = _report(("passed", False), ("failed", False), ("skipped", False))
    report.outcomes["1"].message = "x: expected 1, observed 2"
    text = report.markdown()
    assert "| chat | 1 | 1 | 1 | 1 |" in text
    assert "| `1` | §1.3 | required | x: expected 1, observed 2 |" in text
