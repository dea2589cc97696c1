"""``conformance.parity.matrix``: two runs side by side, the differing cases with their reasons, JUnit merge."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from conformance.parity import matrix


def _case(nodeid: str, outcome: str, *, area: str = "chat", optional: bool = False, **extra: str) -> dict[str, Any]:
    return {"nodeid": nodeid, "area": area, "ref": "1.3", "optional": optional, "outcome": outcome, **extra}


def _runs() -> tuple[matrix.Run, matrix.Run]:
    ollama = matrix.Run.from_results(
        "ollama-0.24.0",
        {
            "expectation": "Ollama 0.24.0, reported by /api/version (0.24.0)",
            "exit_status": 1,
            "cases": [
                _case("test_chat.py::same", "passed"),
                _case("test_chat.py::old", "passed", why="Ollama < 0.30.0: as sent"),
                _case("test_chat.py::new", "skipped", why="Ollama >= 0.30.0: normalised", message="checks ..."),
                _case("test_embed.py::empty", "failed", area="embed", optional=True, message="status: 500"),
                _case("test_chat.py::broken", "failed", message="x: expected 1, observed 2"),
            ],
        },
    )
    corral = matrix.Run.from_results(
        "corral",
        {
            "expectation": "the newest Ollama behaviour (the reference), a Corral server started by the suite",
            "exit_status": 0,
            "cases": [
                _case("test_chat.py::same", "passed"),
                _case("test_chat.py::old", "skipped", why="Ollama < 0.30.0: as sent"),
                _case("test_chat.py::new", "passed", why="Ollama >= 0.30.0: normalised"),
                _case("test_embed.py::empty", "passed", area="embed", optional=True),
                _case("test_chat.py::broken", "passed"),
            ],
        },
    )
    return ollama, corral


def test_differing_cases_in_suite_order() -> None:
    ollama, corral = _runs()
    expected = ["test_chat.py::old", "test_chat.py::new", "test_embed.py::empty", "test_chat.py::broken"]
    assert matrix.differing(ollama, corral) == expected


def test_reason_prefers_the_cases_note_then_the_failure() -> None:
    ollama, corral = _runs()
    assert matrix.reason("test_chat.py::new", ollama, corral) == "Ollama >= 0.30.0: normalised"
    assert matrix.reason("test_chat.py::broken", ollama, corral) == "ollama-0.24.0: x: expected 1, observed 2"


def test_markdown_rows_and_totals() -> None:
    ollama, corral = _runs()
    text = matrix.markdown(ollama, corral, model="smollm2:135m", when=dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC))
    assert "- Run: 2026-11-30 12:00Z; model `smollm2:135m`" in text
    assert "- ollama-0.24.0: **FAIL** (1 required); held to Ollama 0.24.0" in text
    assert "- corral: **PASS**; held to the newest" in text
    assert "| chat | 2 / 1 / 1 | 3 / 0 / 1 |" in text
    assert "| embeddings | 0 / 1 / 0 | 1 / 0 / 0 |" in text
    assert "| **all** | 2 / 2 / 1 | 4 / 0 / 1 |" in text
    assert "## Cases that differ (4)" in text
    assert "| `test_chat.py::old` | required | passed | skipped | Ollama < 0.30.0: as sent |" in text
    assert "| `test_embed.py::empty` | optional | failed | passed | ollama-0.24.0: status: 500 |" in text
    assert "## Required failures on ollama-0.24.0" in text
    assert "Required failures on corral" not in text


def test_aborted_run_verdict() -> None:
    aborted = matrix.Run("corral", "", 4)
    assert matrix.verdict(aborted) == "**ABORTED** (exit status 4)"
    assert aborted.aborted


def test_junit_holds_both_runs(tmp_path: Path) -> None:
    for name, failures in (("a", "1"), ("b", "0")):
        suite = f'<testsuite name="pytest" tests="2" failures="{failures}"><testcase name="t"/></testsuite>'
        (tmp_path / f"{name}.xml").write_text(f"<testsuites>{suite}</testsuites>")
    target = tmp_path / "out" / "matrix.xml"
    matrix.junit({"ollama-0.24.0": tmp_path / "a.xml", "corral": tmp_path / "b.xml"}, target)
    suites = ET.parse(target).getroot().findall("testsuite")
    assert [(s.get("name"), s.get("failures")) for s in suites] == [("ollama-0.24.0", "1"), ("corral", "0")]
