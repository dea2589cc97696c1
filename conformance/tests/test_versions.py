"""``conformance.versions``: release numbers, the ranges cases carry, and which release a target is held to."""

from __future__ import annotations

import pytest

from conformance.versions import OLDEST_KNOWN, OllamaVersion, Range, VersionError, resolve


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.24.0", "0.24.0"),
        ("v0.24.0", "0.24.0"),
        (" 0.30.1 ", "0.30.1"),
        ("0.33.0-rc2", "0.33.0-rc2"),
        ("latest", "latest"),
        ("LATEST", "latest"),
    ],
)
def test_parse(text: str, expected: str) -> None:
    assert str(OllamaVersion.parse(text)) == expected


@pytest.mark.parametrize("text", ["", "0.24", "0.24.x", "1.2.3.4", "version 0.24.0", "0.0.0-"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(VersionError, match="not an Ollama version"):
        OllamaVersion.parse(text)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("0.24.0", "0.30.0"),
        ("0.9.9", "0.10.0"),
        ("0.33.0-rc2", "0.33.0"),
        ("0.33.0-rc1", "0.33.0-rc2"),
        ("0.32.15", "0.33.0-rc0"),
        ("99.0.0", "latest"),
    ],
)
def test_order(lower: str, higher: str) -> None:
    assert OllamaVersion.parse(lower) < OllamaVersion.parse(higher)
    assert not OllamaVersion.parse(higher) < OllamaVersion.parse(lower)


@pytest.mark.parametrize(
    ("since", "until", "version", "applies"),
    [
        ("0.30.0", None, "0.24.0", False),
        ("0.30.0", None, "0.30.0", True),
        ("0.30.0", None, "latest", True),
        (None, "0.30.0", "0.24.0", True),
        (None, "0.30.0", "0.30.0", False),
        (None, "0.30.0", "latest", False),
        ("0.24.0", "0.32.6", "0.32.5", True),
        ("0.24.0", "0.32.6", "0.32.6", False),
        ("0.32.6", None, "0.32.6-rc0", False),
        (None, None, "0.1.0", True),
    ],
)
def test_range_applies(since: str | None, until: str | None, version: str, applies: bool) -> None:
    assert Range.from_marker(since=since, until=until).applies(OllamaVersion.parse(version)) is applies


def test_range_describe() -> None:
    assert Range.from_marker(since="0.30.0").describe() == "Ollama >= 0.30.0"
    assert Range.from_marker(since="0.24.0", until="0.30.0").describe() == "Ollama >= 0.24.0, < 0.30.0"


def test_range_rejects_bad_bound() -> None:
    with pytest.raises(VersionError):
        Range.from_marker(since="soon")


@pytest.mark.parametrize(
    ("override", "reported", "started", "version", "source"),
    [
        ("0.24.0", "0.33.0", False, "0.24.0", "--ollama-version"),
        ("latest", "0.24.0", False, "latest", "--ollama-version"),
        (None, "0.1.0", True, "latest", "started by the suite"),
        (None, "0.24.0", False, "0.24.0", "/api/version (0.24.0)"),
        (None, "0.33.0-rc2", False, "0.33.0-rc2", "/api/version"),
        (None, "0.1.0", False, "latest", "older than any release"),
        (None, 123, False, "latest", "not a release number"),
        (None, "status 404: 404 page not found", False, "latest", "not a release number"),
    ],
)
def test_resolve(override: str | None, reported: object, started: bool, version: str, source: str) -> None:
    found = resolve(override, reported, started_corral=started)
    assert str(found.version) == version
    assert source in found.source


def test_oldest_known_is_a_release() -> None:
    assert not OllamaVersion.parse(OLDEST_KNOWN).is_latest


def test_resolve_rejects_bad_override() -> None:
    with pytest.raises(VersionError):
        resolve("next", "0.24.0", started_corral=False)
