"""Go literal syntax: reading string, character and number constants, and quoting strings Go's way.

Reading follows ``strconv.Unquote`` / ``strconv.ParseInt(s, 0, 64)`` / ``strconv.ParseFloat``; quoting follows
``strconv.Quote`` (used by ``%q`` and in error messages). Failures raise ``ValueError`` with the message the
template parser reports.
"""

from __future__ import annotations

from server.gocompat.strconv import quote

__all__ = ["parse_number", "unquote", "unquote_char"]

_SIMPLE_ESCAPES = {"a": 0x07, "b": 0x08, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B, "\\": 0x5C}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _read_escape(body: str, i: int, quote_char: str) -> tuple[bytes, int]:
    """Decode the escape starting after the backslash at ``body[i]``; returns (UTF-8 bytes, next index)."""
    ch = body[i : i + 1]
    if ch in _SIMPLE_ESCAPES:
        return bytes([_SIMPLE_ESCAPES[ch]]), i + 1
    if ch == quote_char:
        return ch.encode(), i + 1
    widths = {"x": 2, "u": 4, "U": 8}
    if ch in widths:
        digits = body[i + 1 : i + 1 + widths[ch]]
        if len(digits) != widths[ch] or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise ValueError("invalid syntax")
        value = int(digits, 16)
        if ch == "x":
            return bytes([value]), i + 1 + widths[ch]
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise ValueError("invalid syntax")
        return chr(value).encode(), i + 1 + widths[ch]
    if "0" <= ch <= "7" and ch:
        digits = body[i : i + 3]
        if len(digits) != 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
            raise ValueError("invalid syntax")
        return bytes([int(digits, 8)]), i + 3
    raise ValueError("invalid syntax")


def unquote(literal: str) -> str:
    """The value of a Go string literal: ``"..."`` with escapes, or a raw `` `...` `` string."""
    if len(literal) >= 2 and literal[0] == literal[-1] == "`":
        return literal[1:-1].replace("\r", "")
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise ValueError("invalid syntax")
    body = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            chunk, i = _read_escape(body, i + 1, '"')
            out += chunk
        elif ch in '"\n':
            raise ValueError("invalid syntax")
        else:
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
    return out.decode("utf-8", "replace")


def unquote_char(literal: str) -> int:
    """The code point of a Go character constant such as ``'a'`` or ``'\\n'``."""
    if len(literal) < 3 or literal[0] != "'" or literal[-1] != "'":
        raise ValueError("malformed character constant: " + literal)
    body = literal[1:-1]
    if body[0] == "\\":
        chunk, end = _read_escape(body, 1, "'")
        if end != len(body):
            raise ValueError("malformed character constant: " + literal)
        return chunk[0] if body[1] in "x01234567" else ord(chunk.decode())
    if len(body) != 1:
        raise ValueError("malformed character constant: " + literal)
    return ord(body)


def _parse_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)`` without the range check; None when the syntax is not an integer."""
    sign = -1 if text.startswith("-") else 1
    body = text[1:] if text[:1] in "+-" and text else text
    base = 10
    if len(body) > 1 and body[0] == "0":
        prefixes = {"x": 16, "o": 8, "b": 2}
        if body[1].lower() in prefixes:
            base, body = prefixes[body[1].lower()], body[2:]
        else:
            base, body = 8, body[1:]
    if not body or body.startswith("_") or body.endswith("_") or "__" in body:
        return None
    try:
        return sign * int(body, base)
    except ValueError:
        return None


def parse_number(text: str) -> int | float:
    """The value of a numeric constant: an int unless the spelling makes it a float (``1.0``, ``1e3``, ``0x1p4``)."""
    if text.startswith("'"):
        return unquote_char(text)
    as_int = _parse_int(text)
    if as_int is not None:
        if not _INT64_MIN <= as_int <= _INT64_MAX:
            raise ValueError(f"{text} overflows int")
        return as_int
    clean = text.replace("_", "")
    try:
        body = clean.lstrip("+-")
        if body[:2].lower() == "0x":
            value = float.fromhex(clean)
        elif body and body[0] in "0123456789." and body.lower() not in ("inf", "nan"):
            value = float(clean)
        else:
            raise ValueError(text)
    except ValueError:
        raise ValueError(f"illegal number syntax: {quote(text)}") from None
    if not any(c in text for c in ".eEpP"):
        raise ValueError(f"integer overflow: {quote(text)}")
    return value
