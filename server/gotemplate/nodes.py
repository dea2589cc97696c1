"""Parse-tree nodes of a Go template.

Nodes are immutable; transformations (such as cutting a template after ``{{ .Response }}``) build new trees.
``str(node)`` renders the node back in template syntax the way Go's ``Node.String`` does; execution errors quote
it (``executing "" at <index .X 5>``). ``pos`` is the node's offset in the source text.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ActionNode",
    "ArgNode",
    "BoolNode",
    "BranchNode",
    "BreakNode",
    "ChainNode",
    "CommandNode",
    "ContinueNode",
    "DotNode",
    "FieldNode",
    "IdentifierNode",
    "IfNode",
    "ListNode",
    "NilNode",
    "Node",
    "NumberNode",
    "PipeNode",
    "RangeNode",
    "StringNode",
    "TextNode",
    "VariableNode",
    "WithNode",
]


@dataclass(frozen=True)
class TextNode:
    pos: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class FieldNode:
    """``.A.B``: field names looked up on dot, in order."""

    pos: int
    idents: tuple[str, ...]

    def __str__(self) -> str:
        return "".join("." + ident for ident in self.idents)


@dataclass(frozen=True)
class VariableNode:
    """``$x.A.B``: ``idents[0]`` is the variable's name including ``$``, the rest are fields."""

    pos: int
    idents: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass(frozen=True)
class DotNode:
    pos: int

    def __str__(self) -> str:
        return "."


@dataclass(frozen=True)
class NilNode:
    pos: int

    def __str__(self) -> str:
        return "nil"


@dataclass(frozen=True)
class BoolNode:
    pos: int
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(frozen=True)
class NumberNode:
    """A numeric or character constant; ``value`` is what it evaluates to (int, or float for 1.5 / 1e3)."""

    pos: int
    text: str
    value: int | float

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class StringNode:
    """A string constant; ``quoted`` is the source spelling, ``value`` the unquoted text."""

    pos: int
    quoted: str
    value: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(frozen=True)
class IdentifierNode:
    """A function name."""

    pos: int
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ChainNode:
    """``(pipeline).A.B``: fields applied to the value of a term that is not dot or a variable."""

    pos: int
    node: ArgNode
    fields: tuple[str, ...]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return inner + "".join("." + field for field in self.fields)


@dataclass(frozen=True)
class CommandNode:
    """One stage of a pipeline: an operand, or a function or method with its arguments."""

    pos: int
    args: tuple[ArgNode, ...]

    def __str__(self) -> str:
        return " ".join(f"({arg})" if isinstance(arg, PipeNode) else str(arg) for arg in self.args)


@dataclass(frozen=True)
class PipeNode:
    """``$a, $b := cmd | cmd``. ``decl`` holds declared (or, with ``is_assign``, assigned) variables."""

    pos: int
    decl: tuple[VariableNode, ...]
    is_assign: bool
    cmds: tuple[CommandNode, ...]

    def __str__(self) -> str:
        text = ""
        if self.decl:
            text = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return text + " | ".join(str(cmd) for cmd in self.cmds)


ArgNode = (
    FieldNode
    | VariableNode
    | DotNode
    | NilNode
    | BoolNode
    | NumberNode
    | StringNode
    | IdentifierNode
    | ChainNode
    | PipeNode
)


@dataclass(frozen=True)
class ActionNode:
    """``{{ pipeline }}``: prints the value unless the pipeline declares or assigns variables."""

    pos: int
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(frozen=True)
class ListNode:
    pos: int
    nodes: tuple[Node, ...]

    def __str__(self) -> str:
        return "".join(str(node) for node in self.nodes)


@dataclass(frozen=True)
class BranchNode:
    """Shared shape of ``if``, ``range`` and ``with``; ``else_list`` is None when there is no ``{{else}}``."""

    pos: int
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None

    keyword = ""

    def __str__(self) -> str:
        text = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            text += "{{else}}" + str(self.else_list)
        return text + "{{end}}"


@dataclass(frozen=True)
class IfNode(BranchNode):
    keyword = "if"


@dataclass(frozen=True)
class RangeNode(BranchNode):
    keyword = "range"


@dataclass(frozen=True)
class WithNode(BranchNode):
    keyword = "with"


@dataclass(frozen=True)
class BreakNode:
    pos: int

    def __str__(self) -> str:
        return "{{break}}"


@dataclass(frozen=True)
class ContinueNode:
    pos: int

    def __str__(self) -> str:
        return "{{continue}}"


Node = TextNode | ActionNode | IfNode | RangeNode | WithNode | BreakNode | ContinueNode | ListNode
