"""``Template``: a parsed Modelfile TEMPLATE with Ollama's rules on top of Go's ``text/template``.

Ollama-specific behaviour lives here: the ``{{ .Response }}`` appended to templates that mention neither
``Messages`` nor ``Response``, identifier detection for capabilities, the copy cut after ``{{ .Response }}`` used
for legacy turn-by-turn rendering, and the tool-call tag.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from .execute import execute
from .functions import FUNCTIONS
from .nodes import (
    ActionNode,
    ArgNode,
    BranchNode,
    ChainNode,
    CommandNode,
    FieldNode,
    IfNode,
    ListNode,
    Node,
    PipeNode,
    TextNode,
    VariableNode,
)
from .parser import parse

__all__ = ["Template"]


def _identifiers(node: Node | ArgNode | CommandNode) -> Iterator[str]:
    """Every field and variable name the node mentions, in document order."""
    if isinstance(node, ListNode):
        for child in node.nodes:
            yield from _identifiers(child)
    elif isinstance(node, ActionNode):
        yield from _identifiers(node.pipe)
    elif isinstance(node, BranchNode):
        yield from _identifiers(node.pipe)
        yield from _identifiers(node.list)
        if node.else_list is not None:
            yield from _identifiers(node.else_list)
    elif isinstance(node, PipeNode):
        for cmd in node.cmds:
            yield from _identifiers(cmd)
    elif isinstance(node, CommandNode):
        for arg in node.args:
            yield from _identifiers(arg)
    elif isinstance(node, FieldNode | VariableNode):
        yield from node.idents
    elif isinstance(node, ChainNode):
        yield from _identifiers(node.node)
        yield from node.fields


class _ResponseCut:
    """Ollama's cut: walking in document order, drop every node after the first ``.Response`` field.

    Conditions of ``if``/``range``/``with`` are not walked (a ``{{ if .Response }}`` does not start the cut),
    but once the cut has started every later node goes, including whole control structures.
    """

    def __init__(self) -> None:
        self.cut = False

    def drops(self, node: object) -> bool:
        if isinstance(node, FieldNode) and "Response" in node.idents:
            self.cut = True
            return False
        return self.cut

    def list(self, node: ListNode) -> ListNode:
        kept = (self.node(child) for child in node.nodes)
        return ListNode(node.pos, tuple(child for child in kept if child is not None))

    def node(self, node: Node) -> Node | None:
        if self.drops(node):
            return None
        if isinstance(node, ListNode):
            return self.list(node)
        if isinstance(node, BranchNode):
            body = self.list(node.list)
            else_list = None if node.else_list is None else self.list(node.else_list)
            return replace(node, list=body, else_list=else_list)
        if isinstance(node, ActionNode):
            pipe = self.pipe(node.pipe)
            return None if pipe is None else ActionNode(node.pos, pipe)
        return node

    def pipe(self, pipe: PipeNode) -> PipeNode | None:
        if self.drops(pipe):
            return None
        cmds: list[CommandNode] = []
        for cmd in pipe.cmds:
            args: list[ArgNode] = []
            for arg in cmd.args:
                kept = self.pipe(arg) if isinstance(arg, PipeNode) else (None if self.drops(arg) else arg)
                if kept is not None:
                    args.append(kept)
            if not args:
                # As in Ollama: a command left empty drops the whole pipeline.
                return None
            cmds.append(CommandNode(cmd.pos, tuple(args)))
        return replace(pipe, cmds=tuple(cmds))


def _mentions_tool_calls(node: IfNode) -> bool:
    return any(isinstance(arg, FieldNode) and "ToolCalls" in arg.idents for cmd in node.pipe.cmds for arg in cmd.args)


def _find_tool_calls_if(nodes: tuple[Node, ...]) -> IfNode | None:
    for node in nodes:
        if isinstance(node, IfNode) and _mentions_tool_calls(node):
            return node
        if isinstance(node, ListNode):
            found = _find_tool_calls_if(node.nodes)
        elif isinstance(node, BranchNode):
            found = _find_tool_calls_if(node.list.nodes)
            if found is None and node.else_list is not None:
                found = _find_tool_calls_if(node.else_list.nodes)
        else:
            found = None
        if found is not None:
            return found
    return None


def _first_text(nodes: tuple[Node, ...]) -> TextNode | None:
    for node in nodes:
        if isinstance(node, TextNode):
            return node
        found = None
        if isinstance(node, ListNode):
            found = _first_text(node.nodes)
        elif isinstance(node, BranchNode):
            found = _first_text(node.list.nodes)
            if found is None and node.else_list is not None:
                found = _first_text(node.else_list.nodes)
        if found is not None:
            return found
    return None


class Template:
    """A parsed template. Immutable; safe to share between requests and threads."""

    def __init__(self, root: ListNode, source: str) -> None:
        """Wrap an already parsed tree; use ``Template.parse`` to build one from text."""
        self.root = root
        self.source = source

    @classmethod
    def parse(cls, text: str, *, append_response: bool = True) -> Template:
        """Parse Go template source; ``TemplateError`` (with the line number) when it does not parse.

        With ``append_response`` (Ollama's rule, the default), a template that mentions neither ``Messages`` nor
        ``Response`` gets ``{{ .Response }}`` appended after its last node.
        """
        template = cls(parse(text, FUNCTIONS), text)
        if append_response and not (template.references("Messages") or template.references("Response")):
            end = len(text)
            command = CommandNode(end, (FieldNode(end, ("Response",)),))
            response = ActionNode(end, PipeNode(end, (), False, (command,)))
            template = cls(ListNode(0, (*template.root.nodes, response)), text)
        return template

    def execute(self, data: object) -> str:
        """Render with ``data`` as dot and ``$``; runtime failures raise ``TemplateError``."""
        return execute(self.root, self.source, FUNCTIONS, data)

    def references(self, name: str) -> bool:
        """Whether a field or variable node mentions ``name``, case-insensitively (``.Tools``, ``$.Tools``)."""
        wanted = name.lower()
        return any(ident.lower() == wanted for ident in _identifiers(self.root))

    def truncated_after_response(self) -> Template:
        """A copy that ends right after the first ``.Response`` field, for the last turn of legacy rendering.

        When ``.Response`` sits inside ``if``/``range``/``with``, the structure stays with its condition but loses
        everything after the field, including its ``else`` branch if that comes later; nothing after the
        structure survives. Without any ``.Response`` the copy equals the original.
        """
        return Template(_ResponseCut().list(self.root), self.source)

    def tool_call_tag(self) -> str | None:
        """The text that starts a tool call in model output, or None when the template has no ``{{ if .ToolCalls }}``.

        It is the first text inside the first ``if`` whose condition has a ``.ToolCalls`` field (searching nested
        blocks in document order), cut before any ``{`` and trimmed; ``{`` when that leaves nothing.
        """
        block = _find_tool_calls_if(self.root.nodes)
        if block is None:
            return None
        text = _first_text(block.list.nodes)
        tag = "" if text is None else text.text.replace("\r\n", "\n").split("{", 1)[0].strip()
        return tag or "{"
