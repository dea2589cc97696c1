"""A Go ``text/template`` interpreter for Modelfile TEMPLATEs, with Ollama's functions and rules.

    template = Template.parse('{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}')
    template.execute({"Messages": [Message(role="user", content="hi")]})   # 'user: hi\n'

``Template`` parses and executes; ``data`` holds the typed values Ollama passes to templates; errors of either
step raise ``server.errors.TemplateError``.
"""

from __future__ import annotations

from .data import (
    Arguments,
    LegacyData,
    Message,
    MessagesData,
    PropertyType,
    SuffixData,
    Tool,
    ToolCall,
    ToolCallFunction,
    ToolFunction,
    ToolFunctionParameters,
    ToolProperty,
)
from .template import Template
from .values import GoJSONMarshaler, GoStringer, GoStruct

__all__ = [
    "Arguments",
    "GoJSONMarshaler",
    "GoStringer",
    "GoStruct",
    "LegacyData",
    "Message",
    "MessagesData",
    "PropertyType",
    "SuffixData",
    "Template",
    "Tool",
    "ToolCall",
    "ToolCallFunction",
    "ToolFunction",
    "ToolFunctionParameters",
    "ToolProperty",
]
