"""The data Ollama passes to a TEMPLATE (reference §6.2), as typed Python values.

The root is a plain mapping with Go-named keys (``MessagesData``, ``LegacyData``, ``SuffixData``); a key that is
not there prints ``<no value>``, exactly as with Ollama's ``map[string]any``. Messages, tool calls and tools are
``GoStruct`` dataclasses: templates read ``.Role``, ``.ToolCalls``, ``.Function.Arguments`` by their Go names.
What prints as JSON in Ollama prints as JSON here: a tool call's ``Arguments``, a ``Tool`` and a tool's
``Function``. ``from_json`` builds the tool types from request JSON (the shape of Ollama's ``api.Tool``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from .gojson import JSONObject, encode
from .values import GoStruct

__all__ = [
    "Arguments",
    "LegacyData",
    "Message",
    "MessagesData",
    "PropertyType",
    "SuffixData",
    "Tool",
    "ToolCall",
    "ToolCallFunction",
    "ToolFunction",
    "ToolFunctionParameters",
    "ToolProperty",
]


def _omit_empty(members: Sequence[tuple[str, object, bool]]) -> JSONObject:
    """A struct's JSON object; members flagged ``omitempty`` are left out when empty (Go's ``omitempty``)."""
    kept = tuple((key, value) for key, value, omit_empty in members if not (omit_empty and _is_empty(value)))
    return JSONObject(kept)


def _is_empty(value: object) -> bool:
    if value is None or value is False or value == 0:
        return True
    return isinstance(value, str | bytes | tuple | list | Mapping) and len(value) == 0


class Arguments(Mapping[str, object]):
    """A tool call's arguments: a Go ``map[string]any`` that prints as compact, key-sorted Go JSON."""

    def __init__(self, values: Mapping[str, object] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> object:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Arguments({self._values!r})"

    def go_json(self) -> object:
        return self._values

    def go_string(self) -> str:
        return encode(self._values)


class PropertyType(tuple[str, ...]):
    """A JSON-schema ``type``: one name or several. Prints as the name (or ``[a b]``); JSON is a string or list."""

    __slots__ = ()

    def go_json(self) -> object:
        return self[0] if len(self) == 1 else list(self)

    def go_string(self) -> str:
        if len(self) == 1:
            return self[0]
        return "[" + " ".join(self) + "]" if self else ""


@dataclass(frozen=True)
class ToolCallFunction(GoStruct):
    name: str
    arguments: Arguments = field(default_factory=Arguments)
    index: int = 0

    def go_json(self) -> object:
        return _omit_empty(
            [("index", self.index, True), ("name", self.name, False), ("arguments", self.arguments, False)]
        )


@dataclass(frozen=True)
class ToolCall(GoStruct):
    function: ToolCallFunction
    id: str = ""

    def go_json(self) -> object:
        return _omit_empty([("id", self.id, True), ("function", self.function, False)])

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ToolCall:
        """From ``{"id"?, "function": {"index"?, "name", "arguments"}}``."""
        function = obj.get("function") or {}
        return cls(
            id=str(obj.get("id") or ""),
            function=ToolCallFunction(
                name=str(function.get("name") or ""),
                arguments=Arguments(function.get("arguments") or {}),
                index=int(function.get("index") or 0),
            ),
        )


@dataclass(frozen=True)
class Message(GoStruct):
    """One (collated) chat message; ``images`` are raw image bytes."""

    role: str
    content: str = ""
    thinking: str = ""
    images: tuple[bytes, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_name: str = ""
    tool_call_id: str = ""

    def go_json(self) -> object:
        return _omit_empty(
            [
                ("role", self.role, False),
                ("content", self.content, False),
                ("thinking", self.thinking, True),
                ("images", self.images, True),
                ("tool_calls", self.tool_calls, True),
                ("tool_name", self.tool_name, True),
                ("tool_call_id", self.tool_call_id, True),
            ]
        )


@dataclass(frozen=True)
class ToolProperty(GoStruct):
    type: PropertyType = field(default_factory=PropertyType)
    items: object = None
    description: str = ""
    enum: tuple[object, ...] = ()

    def go_json(self) -> object:
        return _omit_empty(
            [
                ("type", self.type, True),
                ("items", self.items, True),
                ("description", self.description, True),
                ("enum", self.enum, True),
            ]
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ToolProperty:
        kind = obj.get("type")
        names = (kind,) if isinstance(kind, str) else tuple(str(k) for k in kind or ())
        return cls(
            type=PropertyType(names),
            items=obj.get("items"),
            description=str(obj.get("description") or ""),
            enum=tuple(obj.get("enum") or ()),
        )


@dataclass(frozen=True)
class ToolFunctionParameters(GoStruct):
    """``properties`` is None when the request had none (JSON ``null``, as Go writes a nil map)."""

    type: str = "object"
    defs: object = None
    items: object = None
    required: tuple[str, ...] = ()
    properties: Mapping[str, ToolProperty] | None = None

    def go_json(self) -> object:
        return _omit_empty(
            [
                ("type", self.type, False),
                ("$defs", self.defs, True),
                ("items", self.items, True),
                ("required", self.required, True),
                ("properties", self.properties, False),
            ]
        )


@dataclass(frozen=True)
class ToolFunction(GoStruct):
    """Prints as its JSON (``{{ .Function }}`` inside ``range .Tools``)."""

    name: str
    description: str = ""
    parameters: ToolFunctionParameters = field(default_factory=ToolFunctionParameters)

    def go_json(self) -> object:
        return _omit_empty(
            [
                ("name", self.name, False),
                ("description", self.description, True),
                ("parameters", self.parameters, False),
            ]
        )

    def go_string(self) -> str:
        return encode(self)


@dataclass(frozen=True)
class Tool(GoStruct):
    """A tool offered to the model; ``{{ . }}`` prints its JSON."""

    function: ToolFunction
    type: str = "function"
    items: object = None

    def go_json(self) -> object:
        return _omit_empty(
            [("type", self.type, False), ("items", self.items, True), ("function", self.function, False)]
        )

    def go_string(self) -> str:
        return encode(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Tool:
        """From an Ollama/OpenAI tool object; fields Go's ``api.Tool`` does not have are dropped."""
        function = obj.get("function") or {}
        params = function.get("parameters") or {}
        properties = params.get("properties")
        return cls(
            type=str(obj.get("type") or ""),
            items=obj.get("items"),
            function=ToolFunction(
                name=str(function.get("name") or ""),
                description=str(function.get("description") or ""),
                parameters=ToolFunctionParameters(
                    type=str(params.get("type") or ""),
                    defs=params.get("$defs"),
                    items=params.get("items"),
                    required=tuple(str(r) for r in params.get("required") or ()),
                    properties=None
                    if properties is None
                    else {str(k): ToolProperty.from_json(v) for k, v in properties.items()},
                ),
            ),
        )


class MessagesData(TypedDict):
    """Root data when the template uses ``.Messages``."""

    System: str
    Messages: Sequence[Message]
    Tools: Sequence[Tool]
    Response: str
    Think: bool
    ThinkLevel: str
    IsThinkSet: bool


class LegacyData(TypedDict):
    """Root data for a ``.System/.Prompt/.Response`` template, rendered turn by turn."""

    System: str
    Prompt: str
    Response: str
    Think: bool
    ThinkLevel: str
    IsThinkSet: bool


class SuffixData(TypedDict):
    """Root data for a generate request with a ``suffix`` (fill-in-the-middle)."""

    Prompt: str
    Suffix: str
    Response: str
    Think: bool
    ThinkLevel: str
    IsThinkSet: bool
