"""The parity report: a pytest plugin that records each case's outcome and writes Markdown.

The report has one row per feature area (passed / failed / skipped, and how many failures are required), then
one row per failing case with its reference section and the first line of its failure (which the cases
phrase as ``expected ..., observed ...``), then the skip reasons. ``required_failures`` tells the runner
whether the gate holds: a failure or error in a case without the ``optional`` marker. ``results()`` is the same
data as JSON (``--results-json``), which the parity matrix of two runs is built from.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.areas import AREAS, area_of
from conformance.versions import EXPECTATION, Range

_MESSAGE_LIMIT = 400


@dataclass
class Outcome:
    """What happened to one case."""

    nodeid: str
    area: str
    ref: str
    optional: bool
    outcome: str = "passed"  # passed | failed | skipped
    message: str = ""
    why: str = ""  # the case's own note on why servers differ here (``optional``/``versions`` markers)


class ParityReport:
    """Collects outcomes while pytest runs; writes ``path`` (Markdown) at the end when ``path`` is set."""

    def __init__(
        self, path: Path | None = None, *, target: str = "", model: str = "", results_path: Path | None = None
    ) -> None:
        self.path = path
        self.results_path = results_path
        self.target = target
        self.model = model
        self.expectation = ""
        self.outcomes: dict[str, Outcome] = {}
        self.exit_status = 0

    @property
    def required_failures(self) -> list[Outcome]:
        """Failed cases that are not optional."""
        return [o for o in self.outcomes.values() if o.outcome == "failed" and not o.optional]

    def _outcome(self, item: pytest.Item) -> Outcome:
        if item.nodeid not in self.outcomes:
            ref = item.get_closest_marker("ref")
            optional = item.get_closest_marker("optional")
            versions = item.get_closest_marker("versions")
            notes = [str(optional.args[0]) if optional and optional.args else "", _versions_note(versions)]
            self.outcomes[item.nodeid] = Outcome(
                nodeid=item.nodeid,
                area=area_of(item.path.stem),
                ref=str(ref.args[0]) if ref and ref.args else "?",
                optional=optional is not None,
                why="; ".join(n for n in notes if n),
            )
        return self.outcomes[item.nodeid]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        result = yield
        report: pytest.TestReport = result.get_result()
        outcome = self._outcome(item)
        if report.failed and outcome.outcome != "failed":
            outcome.outcome = "failed"
            prefix = "" if report.when == "call" else f"[{report.when}] "
            outcome.message = prefix + _first_lines(call.excinfo.value if call.excinfo else report.longreprtext)
        elif report.skipped and outcome.outcome == "passed":
            outcome.outcome = "skipped"
            longrepr = report.longrepr
            outcome.message = str(longrepr[2]) if isinstance(longrepr, tuple) else _first_lines(longrepr)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.exit_status = int(exitstatus)
        if not self.target:
            self.target = str(session.config.getoption("--url", default=None) or "a Corral server started by the suite")
        if not self.model:
            self.model = str(session.config.getoption("--model", default=None) or "")
        expectation = session.config.stash.get(EXPECTATION, None)
        if expectation is not None:
            self.expectation = expectation.describe()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(self.markdown())
        if self.results_path is not None:
            self.results_path.parent.mkdir(parents=True, exist_ok=True)
            self.results_path.write_text(json.dumps(self.results(), indent=1) + "\n")

    def results(self) -> dict[str, Any]:
        """The run as JSON-ready data: target, model, expectation, exit status and one entry per case."""
        return {
            "target": self.target,
            "model": self.model,
            "expectation": self.expectation,
            "exit_status": self.exit_status,
            "cases": [vars(o) for o in self.outcomes.values()],
        }

    def markdown(self) -> str:
        """The report text."""
        rows = list(self.outcomes.values())
        counts = Counter(o.outcome for o in rows)
        aborted = self.exit_status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        verdict = "FAIL" if self.required_failures or aborted else "PASS"
        lines = [
            "# Ollama API parity report",
            "",
            f"- Target: `{self.target}`",
            f"- Model: `{self.model or 'default'}`",
            f"- Held to: {self.expectation or 'not resolved (no case ran)'}",
            f"- Run: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%SZ')}",
            f"- Verdict: **{verdict}** ({len(self.required_failures)} required case(s) failed; "
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped)",
        ]
        if aborted:
            lines.append(f"- **Run aborted** (pytest exit status {self.exit_status}): the results below are partial")
        lines += [
            "",
            "| Area | Passed | Failed | Skipped | Required failed |",
            "|---|---:|---:|---:|---:|",
        ]
        for key, title in AREAS.items():
            area = [o for o in rows if o.area == key]
            if not area:
                continue
            c = Counter(o.outcome for o in area)
            required = sum(1 for o in area if o.outcome == "failed" and not o.optional)
            lines.append(f"| {title} | {c['passed']} | {c['failed']} | {c['skipped']} | {required} |")
        failed = [o for o in rows if o.outcome == "failed"]
        if failed:
            lines += ["", "## Failing cases", "", "| Case | Ref | Kind | Expected vs observed |", "|---|---|---|---|"]
            for o in sorted(failed, key=lambda o: (o.optional, o.area, o.nodeid)):
                kind = "optional" if o.optional else "required"
                lines.append(f"| `{_case_name(o.nodeid)}` | §{o.ref} | {kind} | {_cell(o.message)} |")
        skipped = Counter(o.message for o in rows if o.outcome == "skipped")
        if skipped:
            lines += ["", "## Skipped", "", "| Cases | Reason |", "|---:|---|"]
            for reason, number in skipped.most_common():
                lines.append(f"| {number} | {_cell(reason)} |")
        return "\n".join(lines) + "\n"


def _versions_note(marker: pytest.Mark | None) -> str:
    if marker is None:
        return ""
    span = Range.from_marker(**marker.kwargs)
    return f"{span.describe()}: {span.why}" if span.why else span.describe()


def _first_lines(value: object) -> str:
    lines = [line.strip() for line in str(value).strip().splitlines() if line.strip()]
    # A case's own message comes first; pytest's assertion introspection after it is noise in a table.
    head = lines[0] if lines and "expected" in lines[0] else " ".join(lines[:3])
    return head if len(head) <= _MESSAGE_LIMIT else head[: _MESSAGE_LIMIT - 3] + "..."


def _case_name(nodeid: str) -> str:
    path, _, rest = nodeid.partition("::")
    return f"{Path(path).name}::{rest}" if rest else nodeid


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
