"""Tokenizer for Go ``text/template`` source.

The token stream follows Go's lexer closely because the parser's look-ahead rules (spaces are tokens, a field
glued to a term makes a chain, ``$x :=`` needs three tokens of look-ahead) depend on it. Trim markers are applied
here: ``{{- `` removes trailing white space from the text before the action and `` -}}`` removes leading white
space from the text after it; a marker only counts when the space is there (``{{-3}}`` is the number -3).

A lexical error does not raise: it ends the stream with an ``ERROR`` token, so that the parser reports whatever
it meets first, as Go does.
"""

from __future__ import annotations

import bisect
import enum
import unicodedata
from dataclasses import dataclass

from server.gocompat.strconv import quote

__all__ = ["KEYWORDS", "Token", "TokenKind", "is_alphanumeric", "lex"]

LEFT_DELIM = "{{"
RIGHT_DELIM = "}}"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"
SPACE_CHARS = " \t\r\n"
TERMINATORS = ".,|:)("

KEYWORDS = frozenset({"block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"})


class TokenKind(enum.Enum):
    TEXT = "text"
    LEFT_DELIM = "left delim"
    RIGHT_DELIM = "right delim"
    SPACE = "space"
    ASSIGN = "="
    DECLARE = ":="
    PIPE = "|"
    LEFT_PAREN = "("
    RIGHT_PAREN = ")"
    CHAR = "char"
    STRING = "string"
    RAW_STRING = "raw string"
    CHAR_CONSTANT = "char constant"
    NUMBER = "number"
    BOOL = "bool"
    NIL = "nil"
    DOT = "."
    FIELD = "field"
    VARIABLE = "variable"
    IDENTIFIER = "identifier"
    KEYWORD = "keyword"
    EOF = "EOF"
    ERROR = "error"


@dataclass(frozen=True)
class Token:
    """One lexical item. ``pos`` is the offset of its first character in the source, ``line`` is 1-based."""

    kind: TokenKind
    value: str
    pos: int
    line: int

    def describe(self) -> str:
        """How Go's parser names the token in an "unexpected ..." message."""
        if self.kind is TokenKind.EOF:
            return "EOF"
        if self.kind is TokenKind.ERROR:
            return self.value
        if self.kind in (TokenKind.KEYWORD, TokenKind.NIL, TokenKind.DOT):
            return f"<{self.value}>"
        if len(self.value) > 10:
            return quote(self.value[:10]) + "..."
        return quote(self.value)


def is_alphanumeric(ch: str) -> bool:
    """Go's rule for identifier characters: underscore, Unicode letters and Unicode digits."""
    return ch == "_" or ch.isalpha() or unicodedata.category(ch) == "Nd"


def _describe_rune(ch: str) -> str:
    return f"U+{ord(ch):04X} {ch!r}" if ch.isprintable() else f"U+{ord(ch):04X}"


class _Lexer:
    """Single-use scanner; ``run`` returns the whole token list."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        self.paren_depth = 0
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def emit(self, kind: TokenKind, start: int, end: int) -> None:
        self.tokens.append(Token(kind, self.text[start:end], start, self.line_at(start)))

    def fail(self, message: str, pos: int) -> list[Token]:
        self.tokens.append(Token(TokenKind.ERROR, message, pos, self.line_at(pos)))
        return self.tokens

    def peek(self, pos: int) -> str:
        return self.text[pos] if pos < len(self.text) else ""

    def at_right_delim(self, pos: int) -> tuple[bool, bool]:
        """(delimiter here, with a trim marker) for a right delimiter starting at ``pos``."""
        ch = self.peek(pos)
        if ch and ch in SPACE_CHARS and self.peek(pos + 1) == "-" and self.text.startswith(RIGHT_DELIM, pos + 2):
            return True, True
        return self.text.startswith(RIGHT_DELIM, pos), False

    def at_terminator(self, pos: int) -> bool:
        ch = self.peek(pos)
        return ch == "" or ch in SPACE_CHARS or ch in TERMINATORS or self.text.startswith(RIGHT_DELIM, pos)

    def skip_spaces(self, pos: int) -> int:
        while self.peek(pos) and self.peek(pos) in SPACE_CHARS:
            pos += 1
        return pos

    def run(self) -> list[Token]:
        text = self.text
        pos = 0
        while True:
            left = text.find(LEFT_DELIM, pos)
            if left < 0:
                if pos < len(text):
                    self.emit(TokenKind.TEXT, pos, len(text))
                self.tokens.append(Token(TokenKind.EOF, "", len(text), self.line_at(len(text))))
                return self.tokens
            trim = self.peek(left + 2) == "-" and self.peek(left + 3) != "" and self.peek(left + 3) in SPACE_CHARS
            end = left
            if trim:
                end = len(text[pos:left].rstrip(SPACE_CHARS)) + pos
            if end > pos:
                self.emit(TokenKind.TEXT, pos, end)
            inside = left + len(LEFT_DELIM) + (2 if trim else 0)
            if text.startswith(LEFT_COMMENT, inside):
                after = self.comment(inside)
                if after < 0:
                    return self.tokens
                pos = after
                continue
            self.emit(TokenKind.LEFT_DELIM, left, left + len(LEFT_DELIM))
            self.paren_depth = 0
            after = self.action(inside)
            if after < 0:
                return self.tokens
            pos = after

    def comment(self, pos: int) -> int:
        """Skip a comment action starting at ``/*``; returns the position after it or -1 on error."""
        close = self.text.find(RIGHT_COMMENT, pos + len(LEFT_COMMENT))
        if close < 0:
            self.fail("unclosed comment", pos)
            return -1
        after = close + len(RIGHT_COMMENT)
        delim, trim = self.at_right_delim(after)
        if not delim:
            self.fail("comment ends before closing delimiter", after)
            return -1
        after += (2 if trim else 0) + len(RIGHT_DELIM)
        return self.skip_spaces(after) if trim else after

    def action(self, pos: int) -> int:
        """Tokenize the inside of an action; returns the position after ``}}`` (and trimmed space) or -1."""
        while True:
            delim, trim = self.at_right_delim(pos)
            if delim:
                if self.paren_depth:
                    self.fail("unclosed left paren", pos)
                    return -1
                start = pos + (2 if trim else 0)
                self.emit(TokenKind.RIGHT_DELIM, start, start + len(RIGHT_DELIM))
                after = start + len(RIGHT_DELIM)
                return self.skip_spaces(after) if trim else after
            ch = self.peek(pos)
            if ch == "":
                self.fail("unclosed action", pos)
                return -1
            scanned = self.scan_item(ch, pos)
            if scanned < 0:
                return -1
            pos = scanned

    def scan_item(self, ch: str, pos: int) -> int:
        """Emit one token inside an action starting with ``ch`` at ``pos``; returns the next position or -1."""
        if ch in SPACE_CHARS:
            return self.space(pos)
        if ch in ("=", "|"):
            self.emit(TokenKind.ASSIGN if ch == "=" else TokenKind.PIPE, pos, pos + 1)
            return pos + 1
        if ch == ":":
            if self.peek(pos + 1) != "=":
                self.fail("expected :=", pos)
                return -1
            self.emit(TokenKind.DECLARE, pos, pos + 2)
            return pos + 2
        if ch in "\"`'":
            return self.quoted(ch, pos)
        if ch == "$":
            return self.field_or_variable(TokenKind.VARIABLE, pos)
        if ch == "." and not ("0" <= self.peek(pos + 1) <= "9" and self.peek(pos + 1)):
            return self.field_or_variable(TokenKind.FIELD, pos)
        if ch in "+-." or "0" <= ch <= "9":
            return self.number(pos)
        if is_alphanumeric(ch):
            return self.identifier(pos)
        if ch == "(":
            self.paren_depth += 1
            self.emit(TokenKind.LEFT_PAREN, pos, pos + 1)
            return pos + 1
        if ch == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self.fail("unexpected right paren", pos)
                return -1
            self.emit(TokenKind.RIGHT_PAREN, pos, pos + 1)
            return pos + 1
        if ord(ch) < 0x80 and ch.isprintable():
            self.emit(TokenKind.CHAR, pos, pos + 1)
            return pos + 1
        self.fail(f"unrecognized character in action: {_describe_rune(ch)}", pos)
        return -1

    def space(self, pos: int) -> int:
        end = self.skip_spaces(pos)
        # The last space may belong to a " -}}" trim marker; leave it for at_right_delim.
        if self.peek(end) == "-" and self.text.startswith(RIGHT_DELIM, end + 1):
            end -= 1
            if end == pos:
                return pos
        self.emit(TokenKind.SPACE, pos, end)
        return end

    def quoted(self, quote: str, pos: int) -> int:
        kinds = {'"': TokenKind.STRING, "`": TokenKind.RAW_STRING, "'": TokenKind.CHAR_CONSTANT}
        errors = {
            '"': "unterminated quoted string",
            "`": "unterminated raw quoted string",
            "'": "unterminated character constant",
        }
        i = pos + 1
        while True:
            ch = self.peek(i)
            if ch == "" or (ch == "\n" and quote != "`"):
                self.fail(errors[quote], pos)
                return -1
            if ch == "\\" and quote != "`":
                if self.peek(i + 1) in ("", "\n"):
                    self.fail(errors[quote], pos)
                    return -1
                i += 2
                continue
            i += 1
            if ch == quote:
                break
        self.emit(kinds[quote], pos, i)
        return i

    def field_or_variable(self, kind: TokenKind, pos: int) -> int:
        i = pos + 1
        if self.at_terminator(i):
            self.emit(kind if kind is TokenKind.VARIABLE else TokenKind.DOT, pos, i)
            return i
        while self.peek(i) and is_alphanumeric(self.peek(i)):
            i += 1
        if not self.at_terminator(i):
            self.fail(f"bad character {_describe_rune(self.peek(i))}", i)
            return -1
        self.emit(kind, pos, i)
        return i

    def identifier(self, pos: int) -> int:
        i = pos
        while self.peek(i) and is_alphanumeric(self.peek(i)):
            i += 1
        if not self.at_terminator(i):
            self.fail(f"bad character {_describe_rune(self.peek(i))}", i)
            return -1
        word = self.text[pos:i]
        if word in KEYWORDS:
            kind = TokenKind.KEYWORD
        elif word in ("true", "false"):
            kind = TokenKind.BOOL
        elif word == "nil":
            kind = TokenKind.NIL
        else:
            kind = TokenKind.IDENTIFIER
        self.emit(kind, pos, i)
        return i

    def number(self, pos: int) -> int:
        end = self.scan_number(pos)
        if end >= 0 and self.text[pos:end].endswith("i"):
            self.fail(f"complex constants are not supported: {quote(self.text[pos:end])}", pos)
            return -1
        if end < 0 or (self.peek(end) and self.peek(end) in "+-"):
            # A sign right after a number is Go's complex form (1+2i), which is not supported either.
            stop = pos + 1
            while self.peek(stop) and not (self.peek(stop) in SPACE_CHARS or self.text.startswith(RIGHT_DELIM, stop)):
                stop += 1
            self.fail(f"bad number syntax: {quote(self.text[pos:stop])}", pos)
            return -1
        self.emit(TokenKind.NUMBER, pos, end)
        return end

    def scan_number(self, pos: int) -> int:
        """Go's scanNumber: the end of a number literal at ``pos``, or -1 when letters follow it."""
        i = pos
        if self.peek(i) in ("+", "-") and self.peek(i):
            i += 1
        digits = "0123456789_"
        if self.peek(i) == "0":
            i += 1
            prefix = self.peek(i).lower()
            if prefix and prefix in "xob":
                digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_", "b": "01_"}[prefix]
                i += 1
        while self.peek(i) and self.peek(i) in digits:
            i += 1
        if self.peek(i) == ".":
            i += 1
            while self.peek(i) and self.peek(i) in digits:
                i += 1
        exponent = "eE" if digits == "0123456789_" else ("pP" if len(digits) == 23 else "")
        if exponent and self.peek(i) and self.peek(i) in exponent:
            i += 1
            if self.peek(i) and self.peek(i) in "+-":
                i += 1
            while self.peek(i) and self.peek(i) in "0123456789_":
                i += 1
        if self.peek(i) == "i":
            i += 1
        if self.peek(i) and is_alphanumeric(self.peek(i)):
            return -1
        return i


def lex(text: str) -> list[Token]:
    """Tokenize template source. The list ends with an ``EOF`` token, or with an ``ERROR`` token."""
    return _Lexer(text).run()
