"""Tool calls in model output: a streaming parser that splits generated text into content and tool calls.

Behaviour (reference §6.6), for a model whose Go template has a tool-call tag (``Template.tool_call_tag()``,
``{`` when the template has none):

* Text before the tag is content and streams out as it arrives; text that might be the start of the tag is
  held back until the next chunk decides. For the tags ``{`` and ``[`` (models that answer with bare JSON),
  tool parsing is abandoned as soon as any non-whitespace text comes before the tag.
* From the tag on, text is held. Every complete JSON object in it (found by brace matching that respects JSON
  strings) is a candidate call: ``{"name": <known tool>, "arguments"|"parameters": {...}}`` (the arguments may
  also be a string holding a JSON object; ``{}`` is fine), a ``{"<known tool>": {...}}`` object, such shapes
  nested inside an object without ``name`` (``{"function": {...}}``, ``{"tool_calls": [...]}``), or any object
  preceded by a known tool name (``get_weather {"city": "Paris"}``), which is then the arguments. Candidates
  that are not valid JSON or name no known tool are skipped. Each call is reported as soon as its object closes,
  with ``index`` counting from 0 and a fresh id ``call_`` + 8 lowercase letters/digits.
* For ``{``/``[``: when the first top-level JSON value closes without yielding a call, parsing is abandoned and
  the held text (and everything after it) is content.
* At the end (``flush``): if no call was found, all held text is content; once calls were found, the rest of
  the held text (closing tags, trailing prose) is dropped, as Ollama drops it.

Chunk boundaries may fall anywhere, including inside the tag; the result is the same as feeding the whole text.

    parser = ToolCallParser("<tool_call>", ["get_weather"])
    step = parser.feed('<tool_call>\\n{"name": "get_weather", "arguments": {"city": "Paris"}}\\n</tool_call>')
    step.calls   # [ChatToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_...", index=0)]
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import Enum
from typing import Any, NamedTuple

from server.gotemplate import Template
from server.prompt import ChatToolCall

__all__ = ["ParseStep", "ToolCallParser", "new_call_id", "parse_tool_calls", "tool_names"]

_ID_ALPHABET = string.ascii_lowercase + string.digits
_SYSTEM_RANDOM = random.SystemRandom()


def new_call_id(rng: random.Random | None = None) -> str:
    """``call_`` + 8 random lowercase letters and digits; ``rng`` makes it reproducible in tests."""
    return "call_" + "".join((rng or _SYSTEM_RANDOM).choices(_ID_ALPHABET, k=8))


def tool_names(tools: Iterable[Mapping[str, Any]]) -> list[str]:
    """The function names of request tool objects (``{"type": "function", "function": {"name": ...}}``)."""
    names = []
    for tool in tools:
        function = tool.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if isinstance(name, str) and name:
            names.append(name)
    return names


class ParseStep(NamedTuple):
    """What one ``feed``/``flush`` produced: content to emit now and tool calls completed now.

    A tuple, so ``content, calls = parser.feed(text)`` works too."""

    content: str
    calls: list[ChatToolCall]


class _State(Enum):
    LOOKING = "looking for the tag"
    CALLING = "inside tool calls"
    DONE = "passing text through"


class ToolCallParser:
    """Incremental tool-call extraction for one generation; see the module docstring for the rules.

    Not thread-safe; use one parser per response stream.
    """

    def __init__(self, tag: str, names: Iterable[str], *, new_id: Callable[[], str] = new_call_id) -> None:
        """``tag`` starts a tool call (``{`` when empty); ``names`` are the offered tools' names (empty ones are
        ignored); ``new_id`` makes call ids (inject a deterministic one in tests)."""
        self.tag = tag or "{"
        # Longest first, so "get_weather_now" wins over "get_weather" where both occur at the same place.
        self._names = sorted({name for name in names if name}, key=len, reverse=True)
        self._new_id = new_id
        self._bare_json = self.tag in ("{", "[")
        self._state = _State.LOOKING
        self._held = ""  # LOOKING: a possible start of the tag; CALLING: the text from the tag on
        self._found = 0
        # Scanner over self._held while CALLING.
        self._pos = 0  # next character to scan
        self._gap = 0  # where text not consumed by a call starts (a tool name there can precede bare arguments)
        self._depth = 0  # brace depth of the object being scanned
        self._object_start = 0
        self._in_string = False
        self._escaped = False
        self._list_depth = 0  # for the "[" tag: depth of brackets outside objects

    @classmethod
    def for_template(
        cls,
        template: Template | None,
        tools: Sequence[Mapping[str, Any]],
        *,
        new_id: Callable[[], str] = new_call_id,
    ) -> ToolCallParser:
        """A parser for a model's Go template (``None``: no template, tag ``{``) and the request's tool objects."""
        tag = template.tool_call_tag() if template is not None else None
        return cls(tag or "{", tool_names(tools), new_id=new_id)

    @property
    def calls_found(self) -> int:
        """How many tool calls have been reported so far."""
        return self._found

    def feed(self, text: str) -> ParseStep:
        """Consume the next chunk of generated text."""
        if self._state is _State.DONE:
            return ParseStep(text, [])
        if self._state is _State.LOOKING:
            return self._look(self._held + text)
        self._held += text
        return self._scan()

    def flush(self) -> ParseStep:
        """The generation ended: release whatever is held (see the module docstring). The parser is then done."""
        held, self._held = self._held, ""
        state, self._state = self._state, _State.DONE
        if state is _State.LOOKING or (state is _State.CALLING and self._found == 0):
            return ParseStep(held, [])
        return ParseStep("", [])

    # --- looking for the tag ---------------------------------------------------------------------------------

    def _look(self, text: str) -> ParseStep:
        at = text.find(self.tag)
        found = at >= 0
        if not found:
            at = len(text) - self._partial_tag_length(text)
        content, rest = text[:at], text[at:]
        if self._bare_json and content.strip():
            self._state, self._held = _State.DONE, ""
            return ParseStep(text, [])
        self._held = rest
        if not found:
            return ParseStep(content, [])
        self._state = _State.CALLING
        # Bare-JSON tags are part of the first object; other tags are skipped before scanning.
        self._pos = self._gap = 0 if self._bare_json else len(self.tag)
        step = self._scan()
        return ParseStep(content + step.content, step.calls)

    def _partial_tag_length(self, text: str) -> int:
        """The length of the longest suffix of ``text`` that is a proper prefix of the tag."""
        for size in range(min(len(text), len(self.tag) - 1), 0, -1):
            if text.endswith(self.tag[:size]):
                return size
        return 0

    # --- inside tool calls -----------------------------------------------------------------------------------

    def _scan(self) -> ParseStep:
        found: list[ChatToolCall] = []
        for span in self._objects():
            calls = self._calls_from(*span) if span is not None else []
            if span is not None and calls:
                self._gap = span[1]
                found.extend(calls)
            elif self._bare_json and self._found == 0 and (span is None or self.tag == "{"):
                # The model answered with JSON that is not a tool call: it was content all along.
                self._state, held, self._held = _State.DONE, self._held, ""
                return ParseStep(held, [])
        return ParseStep("", found)

    def _objects(self) -> Iterator[tuple[int, int] | None]:
        """Scan the held text from where the last scan stopped: yield the span of each top-level JSON object as it
        completes, and None when the bracketed list the ``[`` tag opened closes."""
        text = self._held
        while self._pos < len(text):
            char = text[self._pos]
            self._pos += 1
            if self._depth == 0:
                if char == "{":
                    self._depth, self._object_start, self._in_string = 1, self._pos - 1, False
                elif char == "[":
                    self._list_depth += 1
                elif char == "]" and self._list_depth > 0:
                    self._list_depth -= 1
                    if self._list_depth == 0:
                        yield None
            elif self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char == "{":
                self._depth += 1
            elif char == "}":
                self._depth -= 1
                if self._depth == 0:
                    yield self._object_start, self._pos

    def _calls_from(self, start: int, end: int) -> list[ChatToolCall]:
        try:
            value = json.loads(self._held[start:end])
        except ValueError:
            return []
        if not isinstance(value, dict):
            return []
        found = _named_calls(value, self._names)
        if not found and "name" not in value:
            name = self._name_before(start)
            if name is not None:
                found = [(name, value)]
        calls = []
        for name, arguments in found:
            calls.append(ChatToolCall(name=name, arguments=arguments, id=self._new_id(), index=self._found))
            self._found += 1
        return calls

    def _name_before(self, start: int) -> str | None:
        """The known tool name that occurs first in the unconsumed text before an object (longest on a tie)."""
        gap = self._held[self._gap : start]
        best: tuple[int, str] | None = None
        for name in self._names:
            at = gap.find(name)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, name)
        return None if best is None else best[1]


def _arguments(value: object) -> dict[str, Any] | None:
    """Arguments given as an object, or as a string holding a JSON object; else None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _named_calls(obj: dict[str, Any], names: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(name, arguments)`` pairs an object spells out, in document order.

    An object with a ``name`` is a call only when the name is a known tool with object arguments under
    ``arguments`` (first) or ``parameters``; its insides are not searched further. Without ``name``, a key
    that is a tool name with an object value is a call, and nested objects and lists are searched."""
    if "name" in obj:
        name = obj["name"]
        if name not in names:
            return []
        for key in ("arguments", "parameters"):
            arguments = _arguments(obj.get(key))
            if arguments is not None:
                return [(name, arguments)]
        return []
    found: list[tuple[str, dict[str, Any]]] = []
    for key, value in obj.items():
        if key in names and isinstance(value, dict):
            found.append((key, value))
        elif isinstance(value, dict):
            found.extend(_named_calls(value, names))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    found.extend(_named_calls(item, names))
    return found


def parse_tool_calls(
    text: str, tag: str, names: Iterable[str], *, new_id: Callable[[], str] = new_call_id
) -> tuple[str, list[ChatToolCall]]:
    """Non-streaming use: the content and the tool calls of a complete output."""
    parser = ToolCallParser(tag, names, new_id=new_id)
    first = parser.feed(text)
    last = parser.flush()
    return first.content + last.content, first.calls + last.calls
