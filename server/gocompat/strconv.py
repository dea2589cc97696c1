"""``strconv.Quote`` and ``strconv.QuoteRune``: Go literals for strings and characters.

Printable characters (Go's ``IsPrint``, which matches Python's ``str.isprintable`` per character) stay as they
are; the quote character and ``\\`` are escaped; ``\\a \\b \\f \\n \\r \\t \\v`` use their short forms; other
control characters below U+0080 become ``\\xNN``; other non-printables ``\\uNNNN`` or ``\\UNNNNNNNN``. A lone
surrogate, which a Go string cannot hold, is U+FFFD (what Go's JSON decoder makes of it; printable, so it
stays as is).
"""

from __future__ import annotations

__all__ = ["quote", "quote_rune"]

_SHORT_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x0B: "\\v"}


def _escape(code: int, quote_char: str) -> str:
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF or code < 0:
        code = 0xFFFD
    ch = chr(code)
    if ch in (quote_char, "\\"):
        return "\\" + ch
    if ch.isprintable():
        return ch
    if code in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[code]
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def quote(text: str) -> str:
    """``strconv.Quote``: a double-quoted Go string literal."""
    return '"' + "".join(_escape(ord(ch), '"') for ch in text) + '"'


def quote_rune(code: int) -> str:
    """``strconv.QuoteRune``: a single-quoted Go character literal (invalid code points as U+FFFD)."""
    return "'" + _escape(code, "'") + "'"
