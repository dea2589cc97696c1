"""Modelfile parser and writer, compatible with Ollama's ``parser.ParseFile`` and ``ollama show --modelfile``.

Grammar (what :func:`parse_modelfile` accepts):

* A Modelfile is a sequence of commands. Blank space (spaces, tabs, line breaks) between commands is skipped.
  A ``#`` where a command would start begins a comment that runs to the end of the line; anywhere else ``#`` is
  ordinary text.
* A command is a keyword of ASCII letters, case-insensitive, one of FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER,
  LICENSE, MESSAGE, REQUIRES, RENDERER, PARSER, DRAFT, followed by a space or tab.
* ``PARAMETER`` takes a name (``[A-Za-z0-9_]+``, case-sensitive) then a space or tab, then the value.
  ``MESSAGE`` takes a role (letters; exactly ``system``, ``user`` or ``assistant``) then a space or tab, then
  the value. Every other command takes the value directly.
* A value runs to the end of its line and is trimmed of white space. A value that starts with ``\"\"\"`` runs
  until a line that ends (after trimming) with ``\"\"\"``; one that starts with ``"`` until a line that ends
  with ``"``; the outer quotes are removed and the text between them is kept verbatim (line breaks, inner
  spaces, ``#``; there are no escape sequences). A value may be empty (``SYSTEM ""`` or ``SYSTEM`` plus a space).
* There must be at least one FROM, anywhere in the file.

Line breaks are ``\\n``, ``\\r\\n`` or a lone ``\\r``; each counts as one line for the 1-based line numbers in
errors. (Ollama counts ``\\r\\n`` as two lines and reports some errors one line late; Corral reports the line of
the offending text.) Ollama silently drops non-printable characters (such as U+00A0 or U+200D) from values;
Corral keeps them, so such values round-trip.

When a command repeats: the last FROM, TEMPLATE, SYSTEM, RENDERER, PARSER, DRAFT and REQUIRES win (for FROM,
as Ollama does for model names; every FROM is also kept in ``Modelfile.froms`` because Ollama merges FROM
*paths*, e.g. a model and its projector); ADAPTER, LICENSE and MESSAGE accumulate; PARAMETER follows
:func:`server.options.parameters_from_pairs` (``stop`` accumulates, the last value of any other name wins).

Errors are :class:`~server.errors.ModelfileError` with Ollama's message, the 1-based line and the offending
text; syntax errors come first, then ``no FROM line`` (line 0: no line to blame), then PARAMETER and REQUIRES
values in file order.

:func:`render_modelfile` writes the ``ollama show --modelfile`` layout and guarantees that parsing its output
gives back the same values; a value that no quoting can carry raises ``ValueError`` (see its docstring).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server import options
from server.errors import InvalidOption, ModelfileError

__all__ = ["Instruction", "Modelfile", "parse_modelfile", "render_modelfile"]

COMMANDS: tuple[str, ...] = (
    "from",
    "license",
    "template",
    "system",
    "adapter",
    "draft",
    "renderer",
    "parser",
    "parameter",
    "message",
    "requires",
)
ROLES: tuple[str, ...] = ("system", "user", "assistant")

_ERR_COMMAND = (
    'command must be one of "from", "license", "template", "system", "adapter", "draft", "renderer", "parser",'
    ' "parameter", "message", or "requires"'
)
_ERR_ROLE = 'message role must be one of "system", "user", or "assistant"'
_ERR_EOF = "unexpected EOF"
_ERR_NO_FROM = "no FROM line"
_ERR_REQUIRES = "requires must be a valid semver (e.g. 0.14.0)"

# Go's unicode.IsSpace set, which strings.TrimSpace removes from both ends of a value.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
_BLANK = re.compile(r"[ \t\r\n]*")
_LINE_REST = re.compile(r"[^\r\n]*")
_TOKEN = re.compile(r"[^ \t\r\n]*")
_PARAM_NAME = re.compile(r"[A-Za-z0-9_]*")
_ROLE_NAME = re.compile(r"[A-Za-z]*")
_NEWLINE = re.compile(r"[\r\n]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

# golang.org/x/mod/semver after a "v": MAJOR, MAJOR.MINOR or MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], numbers
# without leading zeros, numeric prerelease identifiers without leading zeros.
_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"v{_NUM}(?:\.{_NUM}(?:\.{_NUM}(?:-{_PRE_ID}(?:\.{_PRE_ID})*)?(?:\+{_BUILD_ID}(?:\.{_BUILD_ID})*)?)?)?"
)


@dataclass(frozen=True)
class Instruction:
    """One command as written: ``command`` is the lower-cased keyword (``from``, ``parameter``, ...), ``key``
    the parameter name or message role (``""`` for other commands), ``value`` the unquoted, untyped value and
    ``line`` the 1-based line where the command starts."""

    command: str
    key: str
    value: str
    line: int


@dataclass(frozen=True)
class Modelfile:
    """A parsed Modelfile.

    ``from_`` is the last FROM (``froms`` has them all, in order). ``parameters`` are typed by
    :mod:`server.options` (``stop`` is a list). ``template``, ``system``, ``requires`` (without a ``v``
    prefix), ``renderer``, ``parser`` and ``draft`` are ``None`` when absent. ``messages`` are
    ``(role, content)`` pairs. ``warnings`` hold the ``parameter X is deprecated`` texts. ``instructions`` is
    every command in file order, with its line.
    """

    from_: str
    froms: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    adapters: list[str] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    requires: str | None = None
    renderer: str | None = None
    parser: str | None = None
    draft: str | None = None
    warnings: list[str] = field(default_factory=list)
    instructions: tuple[Instruction, ...] = ()


# --- parsing -----------------------------------------------------------------------------------------------


def parse_modelfile(text: str | bytes) -> Modelfile:
    """Parse Modelfile text (see the module docstring for the grammar) into a :class:`Modelfile`.

    ``bytes`` are decoded as UTF-8, or as UTF-16 when they start with a UTF-16 byte-order mark; a UTF-8 BOM is
    skipped; undecodable bytes become U+FFFD. A ``str`` that starts with U+FEFF has it skipped too.
    Raises :class:`ModelfileError` (Ollama's text, the line number and the offending text).
    """
    source = _decode(text) if isinstance(text, bytes) else text.removeprefix("\ufeff")
    instructions = _Scanner(source).scan()
    return _build(instructions)


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", errors="replace")
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", errors="replace")
    return data.decode("utf-8", errors="replace")


class _Scanner:
    """Splits Modelfile text into instructions, raising ModelfileError on syntax errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        # Offsets where lines 2, 3, ... start, to turn an offset into a line number with one bisect.
        self.line_starts = [match.end() for match in _LINE_BREAK.finditer(text)]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset) + 1

    def error(self, message: str, offset: int, offending: str) -> ModelfileError:
        return ModelfileError(message, line=self.line_of(offset), text=offending)

    def scan(self) -> list[Instruction]:
        text, end = self.text, len(self.text)
        found: list[Instruction] = []
        pos = 0
        while True:
            pos = _match_end(_BLANK, text, pos)
            if pos >= end:
                return found
            if text[pos] == "#":
                pos = _match_end(_LINE_REST, text, pos)
                continue
            start = pos
            command, pos = self.keyword(start)
            key = ""
            if command == "parameter":
                key, pos = self.word(start, pos, _PARAM_NAME)
            elif command == "message":
                key, pos = self.word(start, pos, _ROLE_NAME)
                if key not in ROLES:
                    raise self.error(_ERR_ROLE, start, key)
            value, pos = _scan_value(text, pos)
            if value is None:
                first_line = text[pos : _match_end(_LINE_REST, text, pos)].strip(_GO_SPACE)
                raise self.error(_ERR_EOF, start, first_line)
            found.append(Instruction(command, key, value, self.line_of(start)))

    def keyword(self, start: int) -> tuple[str, int]:
        """Read the command keyword at ``start``; return it lower-cased and the offset after its separator."""
        text = self.text
        after = _match_end(_TOKEN, text, start)
        token = text[start:after]
        # Ollama lets any character start a command and then wants ASCII letters: a non-letter after the first
        # character is a bad command even at the end of the file, while a keyword cut off by the end of the file
        # is "unexpected EOF" whatever it says.
        if len(token) > 1 and not _is_ascii_letters(token[1:]):
            raise self.error(_ERR_COMMAND, start, token)
        if after >= len(text):
            raise self.error(_ERR_EOF, start, token)
        if text[after] in "\r\n" or token.lower() not in COMMANDS:
            raise self.error(_ERR_COMMAND, start, token)
        return token.lower(), after + 1

    def word(self, start: int, pos: int, pattern: re.Pattern[str]) -> tuple[str, int]:
        """Read a parameter name or message role at ``pos``; it must be followed by a space or tab."""
        text = self.text
        after = _match_end(pattern, text, pos)
        word = text[pos:after]
        if after >= len(text):
            raise self.error(_ERR_EOF, start, word)
        if text[after] not in " \t":
            # Ollama's text for a name or role cut short by any other character, a line break included.
            raise self.error(f"{_ERR_EOF}: {word}", start, word)
        return word, after + 1


def _is_ascii_letters(text: str) -> bool:
    return text.isascii() and text.isalpha()


def _match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    match = pattern.match(text, pos)
    assert match is not None  # every pattern used here can match the empty string
    return match.end()


def _scan_value(text: str, pos: int) -> tuple[str | None, int]:
    """Read a value starting at ``pos``: ``(value, offset after its line break)``, or ``(None, pos)`` when the
    text ends inside an open quote.

    The value ends at the first line break where the text read so far, trimmed, is complete: unquoted, or
    quoted with a matching closing quote at its end. Otherwise the line break belongs to the value.
    """
    end = len(text)
    first = -1  # offset of the first non-space character of the value
    last = -1  # offset of the last non-space character read so far
    cursor = pos
    while True:
        newline = _NEWLINE.search(text, cursor)
        line_end = newline.start() if newline else end
        segment = text[cursor:line_end]
        if first < 0:
            leading = len(segment) - len(segment.lstrip(_GO_SPACE))
            if leading < len(segment):
                first = cursor + leading
        kept = len(segment.rstrip(_GO_SPACE))
        if kept:
            last = cursor + kept - 1
        value = _unquote(text, first, last)
        if value is not None:
            return value, (newline.end() if newline else end)
        if newline is None:
            return None, pos
        cursor = newline.end()


def _unquote(text: str, first: int, last: int) -> str | None:
    """The value of the trimmed text ``text[first:last + 1]`` if it is complete, else ``None``."""
    if first < 0:
        return ""
    size = last + 1 - first
    if text.startswith('"""', first):
        if size >= 6 and text.startswith('"""', last - 2):
            return text[first + 3 : last - 2]
        return None
    if text.startswith('"', first):
        if size >= 2 and text[last] == '"':
            return text[first + 1 : last]
        return None
    return text[first : last + 1]


def _build(instructions: list[Instruction]) -> Modelfile:
    froms = [ins.value for ins in instructions if ins.command == "from"]
    if not froms:
        raise ModelfileError(_ERR_NO_FROM)
    single: dict[str, str] = {}
    requires: str | None = None
    pairs: list[tuple[str, str]] = []
    for ins in instructions:
        if ins.command == "parameter":
            try:
                options.parse_parameter(ins.key, ins.value)
            except InvalidOption as exc:
                raise ModelfileError(exc.message, line=ins.line, text=ins.key) from None
            pairs.append((ins.key, ins.value))
        elif ins.command == "requires":
            requires = _parse_requires(ins)
        elif ins.command in ("template", "system", "renderer", "parser", "draft"):
            single[ins.command] = ins.value
    # Every pair was just checked, so this cannot raise; it is the one place that knows how values combine.
    parameters, warnings = options.parameters_from_pairs(pairs)
    return Modelfile(
        from_=froms[-1],
        froms=froms,
        parameters=parameters,
        template=single.get("template"),
        system=single.get("system"),
        adapters=[ins.value for ins in instructions if ins.command == "adapter"],
        licenses=[ins.value for ins in instructions if ins.command == "license"],
        messages=[(ins.key, ins.value) for ins in instructions if ins.command == "message"],
        requires=requires,
        renderer=single.get("renderer"),
        parser=single.get("parser"),
        draft=single.get("draft"),
        warnings=warnings,
        instructions=tuple(instructions),
    )


def _parse_requires(ins: Instruction) -> str:
    version = ins.value if ins.value.startswith("v") else "v" + ins.value
    if _SEMVER.fullmatch(version) is None:
        raise ModelfileError(_ERR_REQUIRES, line=ins.line, text=ins.value)
    return version[1:]


# --- writing -------------------------------------------------------------------------------------------------


def render_modelfile(
    *,
    from_: str,
    template: str | None = None,
    system: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    licenses: Sequence[str] = (),
    messages: Sequence[tuple[str, str]] = (),
    adapters: Sequence[str] = (),
    header_for: str | None = None,
    draft: str | None = None,
    projectors: Sequence[str] = (),
    renderer: str | None = None,
    parser: str | None = None,
    requires: str | None = None,
) -> str:
    """Modelfile text in the layout of ``ollama show --modelfile``; every line ends with a newline.

    With ``header_for`` (the model's short name) the text starts with Ollama's three comment lines and a blank
    line. Then: FROM, ADAPTER lines, DRAFT, a FROM line per projector, TEMPLATE, SYSTEM, RENDERER, PARSER,
    REQUIRES, PARAMETER lines (by name; one ``stop`` line per value; ``None`` values left out), LICENSE lines,
    MESSAGE lines. ``None`` leaves a line out; an empty string is written as ``""``.

    Values are written as Ollama writes them: quoted when they contain a line break or start or end with a
    space, with ``\"\"\"`` if they contain ``"`` and ``"`` otherwise, else bare. Where that form would not parse
    back to the same value (say, a value that starts with ``"``, or has a tab at one end) the next form that
    does is used: bare, ``"..."``, ``\"\"\"...\"\"\"``. Guarantee: ``parse_modelfile`` of the result gives back
    every value given (floats and ints as numbers; the first FROM is ``from_``).

    Raises ``ValueError`` for what no form can carry: a value with a line break whose text before it, less
    trailing white space, ends with ``\"\"\"`` (the parser would close a triple quote there, and a plain quote
    too, since that text also ends with ``"``; a bare value cannot hold a line break), e.g. ``'a\"\"\"\\nb'``;
    a message role other than system/user/assistant; a parameter name that is not a known option; a parameter
    value of the wrong type or a non-finite float; a ``header_for`` or ``requires`` that would not survive a
    parse.
    """
    lines: list[str] = []
    if header_for is not None:
        if _NEWLINE.search(header_for):
            raise ValueError("header_for must be a single line")
        lines += [
            '# Modelfile generated by "ollama show"',
            "# To build a new Modelfile based on this, replace FROM with:",
            f"# FROM {header_for}",
            "",
        ]
    lines.append("FROM " + _quote(from_, "FROM"))
    lines += ["ADAPTER " + _quote(adapter, "ADAPTER") for adapter in adapters]
    if draft is not None:
        lines.append("DRAFT " + _quote(draft, "DRAFT"))
    lines += ["FROM " + _quote(projector, "FROM") for projector in projectors]
    for keyword, value in (("TEMPLATE", template), ("SYSTEM", system), ("RENDERER", renderer), ("PARSER", parser)):
        if value is not None:
            lines.append(f"{keyword} {_quote(value, keyword)}")
    if requires is not None:
        version = requires if requires.startswith("v") else "v" + requires
        if _SEMVER.fullmatch(version) is None or version[1:] != requires:
            raise ValueError(f"REQUIRES {requires!r} is not a semver that parses back to itself")
        lines.append("REQUIRES " + requires)
    for name, value in sorted((parameters or {}).items()):
        lines += [f"PARAMETER {name} {_quote(text, name)}" for text in _parameter_texts(name, value)]
    lines += ["LICENSE " + _quote(license_, "LICENSE") for license_ in licenses]
    for role, content in messages:
        if role not in ROLES:
            raise ValueError(f"MESSAGE role {role!r} is not one of {', '.join(ROLES)}")
        lines.append(f"MESSAGE {role} {_quote(content, 'MESSAGE')}")
    return "".join(line + "\n" for line in lines)


def _parameter_texts(name: str, value: Any) -> list[str]:
    """The Modelfile text of each value of parameter ``name``, checked against its spec."""
    spec = options.lookup(name)
    if spec is None:
        raise ValueError(f"PARAMETER {name!r} is not a known option")
    if value is None:
        return []
    kind = options.OptionKind
    if spec.kind is kind.STRING_LIST:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
            raise ValueError(f"PARAMETER {name} needs a string or a list of strings, got {value!r}")
        return list(items)
    if spec.kind is kind.BOOL and isinstance(value, bool):
        return ["true" if value else "false"]
    if spec.kind is kind.INT and isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    if spec.kind is kind.FLOAT and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            text = options.format_go_float(float(value))
            options.parse_parameter(name, text)
        except (InvalidOption, OverflowError):
            raise ValueError(f"PARAMETER {name} {value!r} cannot be written as a Modelfile value") from None
        return [text]
    raise ValueError(f"PARAMETER {name} needs a {spec.kind.value}, got {value!r}")


def _quote(value: str, what: str) -> str:
    """``value`` in the first form that parses back to exactly ``value`` (Ollama's choice first)."""
    if value == "":
        return '""'
    if "\n" in value or value.startswith(" ") or value.endswith(" "):
        preferred = f'"""{value}"""' if '"' in value else f'"{value}"'
    else:
        preferred = value
    for candidate in (preferred, value, f'"{value}"', f'"""{value}"""'):
        if _scan_value(candidate + "\n", 0) == (value, len(candidate) + 1):
            return candidate
    raise ValueError(f"the {what} value {value!r} cannot be written so that it parses back unchanged")
