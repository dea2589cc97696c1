"""Which Ollama release's behaviour the suite expects from the target, and which cases apply to it.

Some of Ollama's externally visible behaviour changed between releases (an error text, the OpenAI chunk
protocol). A case that checks such behaviour carries ``@pytest.mark.versions(since=..., until=..., why=...)``:
it applies to targets that behave as an Ollama release ``>= since`` and ``< until`` (either bound may be
left out) and is skipped with ``why`` otherwise. Changed behaviour is checked by a pair of cases, one per side
of the release that changed it, so every release gets an expectation.

The expected release comes from, in order: ``--ollama-version`` (``CONFORMANCE_OLLAMA_VERSION``); ``latest``
when the suite started Corral itself (Corral follows the reference, i.e. the newest behaviour); the target's
``/api/version``; ``latest`` when that answer is not a version or is older than ``OLDEST_KNOWN``, the oldest
release the suite was checked against (Corral reports its own version, 0.1.0, which no Ollama release with the
suite's endpoints ever had).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

import pytest

LATEST = "latest"
OLDEST_KNOWN = "0.24.0"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.]+))?$")


class VersionError(ValueError):
    """A version string that is neither ``X.Y.Z`` (optionally ``v``-prefixed, with a ``-pre`` part) nor ``latest``."""


@total_ordering
@dataclass(frozen=True)
class OllamaVersion:
    """A release number; ``latest`` sorts after every release. A pre-release (``0.33.0-rc2``) sorts before
    its release, so a case ``since="0.33.0"`` does not apply to ``0.33.0-rc2``."""

    parts: tuple[int, int, int] | None  # None: latest
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> OllamaVersion:
        """``0.24.0``, ``v0.24.0``, ``0.33.0-rc2`` or ``latest``; raises ``VersionError`` otherwise."""
        cleaned = text.strip()
        if cleaned.lower() == LATEST:
            return cls(None)
        match = _VERSION.match(cleaned)
        if match is None:
            raise VersionError(f"not an Ollama version: {text!r} (expected X.Y.Z or 'latest')")
        major, minor, patch, pre = match.groups()
        return cls((int(major), int(minor), int(patch)), pre or "")

    @property
    def is_latest(self) -> bool:
        return self.parts is None

    def _key(self) -> tuple[int, tuple[int, int, int], int, str]:
        if self.parts is None:
            return (1, (0, 0, 0), 0, "")
        return (0, self.parts, 0 if self.pre else 1, self.pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, OllamaVersion):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        if self.parts is None:
            return LATEST
        text = ".".join(str(p) for p in self.parts)
        return f"{text}-{self.pre}" if self.pre else text


@dataclass(frozen=True)
class Expectation:
    """The release the suite holds the target to, and where that came from (for the report)."""

    version: OllamaVersion
    source: str

    def describe(self) -> str:
        name = "the newest Ollama behaviour (the reference)" if self.version.is_latest else f"Ollama {self.version}"
        return f"{name}, {self.source}"


EXPECTATION = pytest.StashKey[Expectation]()  # set on the pytest config once a run resolved it


@dataclass(frozen=True)
class Range:
    """The releases a case applies to: ``since <= version < until``."""

    since: OllamaVersion | None = None
    until: OllamaVersion | None = None
    why: str = ""

    @classmethod
    def from_marker(cls, since: str | None = None, until: str | None = None, why: str = "") -> Range:
        """Build from the marker's keyword arguments; raises ``VersionError`` on a malformed bound."""
        return cls(
            OllamaVersion.parse(since) if since else None,
            OllamaVersion.parse(until) if until else None,
            why,
        )

    def applies(self, version: OllamaVersion) -> bool:
        """Whether a target behaving as ``version`` should show the case's behaviour."""
        if self.since is not None and version < self.since:
            return False
        return not (self.until is not None and version >= self.until)

    def describe(self) -> str:
        """``Ollama >= 0.30.0``, ``Ollama < 0.30.0`` or ``Ollama >= 0.24.0, < 0.30.0``."""
        bounds = []
        if self.since is not None:
            bounds.append(f">= {self.since}")
        if self.until is not None:
            bounds.append(f"< {self.until}")
        return "Ollama " + ", ".join(bounds) if bounds else "every Ollama release"


def resolve(override: str | None, reported: object, *, started_corral: bool) -> Expectation:
    """The expectation for a target (see the module docstring for the order); raises ``VersionError`` when
    ``override`` is malformed."""
    if override:
        return Expectation(OllamaVersion.parse(override), "set by --ollama-version")
    if started_corral:
        return Expectation(OllamaVersion(None), "a Corral server started by the suite")
    try:
        version = OllamaVersion.parse(reported) if isinstance(reported, str) else None
    except VersionError:
        version = None
    if version is None:
        return Expectation(OllamaVersion(None), f"/api/version reported {reported!r}, not a release number")
    if version < OllamaVersion.parse(OLDEST_KNOWN):
        return Expectation(
            OllamaVersion(None), f"/api/version reported {reported}, older than any release the suite knows"
        )
    return Expectation(version, f"reported by /api/version ({reported})")
