"""The parity matrix: two runs of the suite (real Ollama, Corral) side by side.

Input: the ``--results-json`` files of both runs (``conformance.report.ParityReport.results``). Output: Markdown
with the verdict of each run, per-area totals for both, and one row per case whose outcome differs, with the
reason (the case's own note from its ``optional``/``versions`` marker, else the failure or skip message); and
JUnit XML that holds both runs' test suites side by side.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.areas import AREAS


@dataclass(frozen=True)
class Run:
    """One run of the suite, as its results JSON describes it."""

    name: str
    expectation: str
    exit_status: int
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_results(cls, name: str, results: dict[str, Any]) -> Run:
        cases = {str(c["nodeid"]): c for c in results.get("cases", [])}
        return cls(name, str(results.get("expectation", "")), int(results.get("exit_status", 0)), cases)

    @property
    def aborted(self) -> bool:
        return self.exit_status not in (0, 1)

    def required_failures(self) -> list[str]:
        return sorted(n for n, c in self.cases.items() if c["outcome"] == "failed" and not c["optional"])

    def outcome(self, nodeid: str) -> str:
        case = self.cases.get(nodeid)
        return str(case["outcome"]) if case else "not run"


def differing(left: Run, right: Run) -> list[str]:
    """The cases whose outcome differs between the two runs, in suite order."""
    names = list(dict.fromkeys([*left.cases, *right.cases]))
    return [n for n in names if left.outcome(n) != right.outcome(n)]


def reason(nodeid: str, left: Run, right: Run) -> str:
    """Why a case differs: its own note when it has one, else what the failing (or skipping) side reported."""
    for run in (left, right):
        case = run.cases.get(nodeid)
        if case and case.get("why"):
            return str(case["why"])
    for wanted in ("failed", "skipped"):
        for run in (left, right):
            case = run.cases.get(nodeid)
            if case and case["outcome"] == wanted:
                return f"{run.name}: {case.get('message', '')}"
    return ""


def verdict(run: Run) -> str:
    if run.aborted:
        return f"**ABORTED** (exit status {run.exit_status})"
    failed = run.required_failures()
    return f"**FAIL** ({len(failed)} required)" if failed else "**PASS**"


def markdown(left: Run, right: Run, *, model: str, when: dt.datetime | None = None) -> str:
    """The matrix as Markdown (``left`` is the real Ollama, ``right`` the server compared with it)."""
    stamp = (when or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%MZ")
    lines = [
        "# Parity matrix",
        "",
        f"- Run: {stamp}; model `{model}`",
        f"- {left.name}: {verdict(left)}; held to {left.expectation or 'unknown'}",
        f"- {right.name}: {verdict(right)}; held to {right.expectation or 'unknown'}",
        "",
        f"| Area | {left.name} passed / failed / skipped | {right.name} passed / failed / skipped |",
        "|---|---|---|",
    ]
    for key, title in AREAS.items():
        cells = [_totals(run, key) for run in (left, right)]
        if any(cells):
            lines.append(f"| {title} | {cells[0] or '-'} | {cells[1] or '-'} |")
    cells = [_totals(run, None) for run in (left, right)]
    lines.append(f"| **all** | {cells[0] or '-'} | {cells[1] or '-'} |")
    rows = differing(left, right)
    lines += ["", f"## Cases that differ ({len(rows)})", ""]
    if rows:
        lines += [f"| Case | Kind | {left.name} | {right.name} | Why |", "|---|---|---|---|---|"]
        for nodeid in rows:
            case = left.cases.get(nodeid) or right.cases[nodeid]
            kind = "optional" if case.get("optional") else "required"
            outcome = [run.outcome(nodeid) for run in (left, right)]
            why = _cell(reason(nodeid, left, right))
            lines.append(f"| `{_case_name(nodeid)}` | {kind} | {outcome[0]} | {outcome[1]} | {why} |")
    else:
        lines.append("None: every case has the same outcome on both servers.")
    for run in (left, right):
        failed = run.required_failures()
        if failed:
            lines += ["", f"## Required failures on {run.name}", ""]
            lines += [f"- `{_case_name(n)}`: {_cell(str(run.cases[n].get('message', '')))}" for n in failed]
    return "\n".join(lines) + "\n"


def junit(runs: dict[str, Path], target: Path) -> None:
    """Write one JUnit file holding every run's test suites, each renamed after its run."""
    root = ET.Element("testsuites")
    for name, path in runs.items():
        parsed = ET.parse(path).getroot()
        suites = [parsed] if parsed.tag == "testsuite" else list(parsed.iter("testsuite"))
        for suite in suites:
            suite.set("name", name)
            root.append(suite)
    target.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)


def _totals(run: Run, area: str | None) -> str:
    counts = Counter(c["outcome"] for c in run.cases.values() if area is None or c["area"] == area)
    if not counts:
        return ""
    return f"{counts['passed']} / {counts['failed']} / {counts['skipped']}"


def _case_name(nodeid: str) -> str:
    path, _, rest = nodeid.partition("::")
    return f"{Path(path).name}::{rest}" if rest else nodeid


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
