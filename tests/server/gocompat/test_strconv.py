"""strconv.Quote and QuoteRune, as Go 1.26 prints them."""

from __future__ import annotations

import pytest

from server.gocompat.strconv import quote, quote_rune

GO_QUOTES = [
    ("plain", "<|im_end|>", '"<|im_end|>"'),
    ("quote-and-backslash", 'a"b\\c', '"a\\"b\\\\c"'),
    ("short-escapes", "\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
    ("control-hex", "\x01\x1b\x7f", '"\\x01\\x1b\\x7f"'),
    ("c1-and-format-chars", "\x85\xa0\u200d", '"\\u0085\\u00a0\\u200d"'),
    ("printable-unicode", "é日本😀", '"é日本😀"'),
    ("astral-non-printable", "\U000e0001", '"\\U000e0001"'),
    ("lone-surrogate", "\ud800", '"\ufffd"'),
    ("empty", "", '""'),
]


@pytest.mark.parametrize(("text", "expected"), [row[1:] for row in GO_QUOTES], ids=[row[0] for row in GO_QUOTES])
def test_quote(text: str, expected: str) -> None:
    """Expected texts checked against Go 1.26's strconv.Quote."""
    assert quote(text) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [(ord("a"), "'a'"), (0x0A, "'\\n'"), (ord("'"), "'\\''"), (0xD800, "'\ufffd'"), (0x110000, "'\ufffd'")],
)
def test_quote_rune(code: int, expected: str) -> None:
    assert quote_rune(code) == expected
