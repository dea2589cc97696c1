"""Walks a parse tree against data and writes the output, with Go's evaluation rules.

Variables live on one stack: control structures (``if``, ``with``, ``range``) pop what they declared when they
end, and each ``range`` iteration pops what its body declared; ``$x = v`` updates the nearest ``$x``. A field of
a missing map key is ``None``; printing ``None`` gives ``<no value>`` (inside ``print``/``printf``: ``<nil>``).
A field read through a nil value met in the middle of a chain is an error, as in Go, but a chain that starts
from a nil variable, pipeline result or dot yields nil.

Errors raise ``TemplateError``: ``template: :LINE:COL: executing "" at <NODE>: message``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from server.errors import TemplateError

from .functions import Function
from .gofmt import format_value
from .nodes import (
    ActionNode,
    ArgNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TextNode,
    VariableNode,
    WithNode,
)
from .values import GoError, GoStruct, go_type_name, is_sequence, is_true, sorted_keys

__all__ = ["execute"]


class _Break(Exception):
    """Unwinds to the enclosing range: ``{{break}}``."""


class _Continue(Exception):
    """Unwinds to the end of the current range iteration: ``{{continue}}``."""


class _NoFinal:
    """Marks a command that receives no value from a previous pipeline stage."""


_NO_FINAL = _NoFinal()
ArgNodes = Sequence[ArgNode]


class _State:
    def __init__(self, source: str, functions: Mapping[str, Function], data: object) -> None:
        self.source = source
        self.functions = functions
        self.out: list[str] = []
        self.vars: list[tuple[str, object]] = [("$", data)]
        self.node: object = None

    # --- errors and variables -------------------------------------------------------------------------------

    def at(self, node: object) -> None:
        self.node = node

    def fail(self, message: str) -> NoReturn:
        pos = getattr(self.node, "pos", 0)
        line = self.source.count("\n", 0, pos) + 1
        column = pos - (self.source.rfind("\n", 0, pos) + 1)
        raise TemplateError(f'template: :{line}:{column}: executing "" at <{self.node}>: {message}')

    def var_value(self, name: str) -> object:
        for var_name, value in reversed(self.vars):
            if var_name == name:
                return value
        self.fail(f"undefined variable: {name}")

    def set_var(self, name: str, value: object) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        self.fail(f"undefined variable: {name}")

    def set_top_var(self, depth: int, value: object) -> None:
        self.vars[-depth] = (self.vars[-depth][0], value)

    # --- statements -----------------------------------------------------------------------------------------

    def walk(self, dot: object, node: Node) -> None:
        if isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.at(node)
                self.out.append("<no value>" if value is None else format_value(value))
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, BranchNode):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue

    def walk_if_or_with(self, dot: object, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if is_true(value):
                self.walk(value if isinstance(node, WithNode) else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def range_items(self, value: object, node: RangeNode) -> Iterable[tuple[object, object]]:
        if value is None:
            return []
        if isinstance(value, Mapping):
            mapping: Mapping[Any, object] = value
            return [(key, mapping[key]) for key in sorted_keys(mapping)]
        if isinstance(value, bytes) or is_sequence(value):
            sequence: Sequence[object] = value  # type: ignore[assignment]
            return list(enumerate(sequence))
        if isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                self.fail(f"can't use {value} to iterate over more than one variable")
            return ((i, i) for i in range(value))
        self.at(node)
        self.fail(f"range can't iterate over {format_value(value)}")

    def walk_range(self, dot: object, node: RangeNode) -> None:
        self.at(node)
        outer_mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            mark = len(self.vars)
            ran = False
            try:
                for index, elem in self.range_items(value, node):
                    ran = True
                    self.iterate(node, index, elem, mark)
            except _Break:
                pass
            if not ran and node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[outer_mark:]

    def iterate(self, node: RangeNode, index: object, elem: object, mark: int) -> None:
        decl, is_assign = node.pipe.decl, node.pipe.is_assign
        if decl:
            if is_assign:
                self.set_var(decl[0].idents[0], index if len(decl) > 1 else elem)
            else:
                # The pipeline pushed the declared variables; the last one gets the element.
                self.set_top_var(1, elem)
        if len(decl) > 1:
            if is_assign:
                self.set_var(decl[1].idents[0], elem)
            else:
                self.set_top_var(2, index)
        try:
            self.walk(elem, node.list)
        except _Continue:
            pass
        finally:
            del self.vars[mark:]

    # --- expressions ----------------------------------------------------------------------------------------

    def eval_pipeline(self, dot: object, pipe: PipeNode) -> object:
        self.at(pipe)
        value: object = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.idents[0], value)
            else:
                self.vars.append((variable.idents[0], value))
        return value

    def not_a_function(self, args: ArgNodes, final: object) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            self.fail(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: object, cmd: CommandNode, final: object) -> object:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            return self.eval_field_chain(first, dot, first.idents, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, VariableNode):
            return self.eval_variable(first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, PipeNode):
            return self.eval_pipeline(dot, first)
        if isinstance(first, NilNode):
            self.fail("nil is not a command")
        return self.eval_arg(dot, first)

    def eval_arg(self, dot: object, node: ArgNode) -> object:
        self.at(node)
        if isinstance(node, DotNode):
            return dot
        if isinstance(node, NilNode):
            return None
        if isinstance(node, BoolNode | NumberNode | StringNode):
            return node.value
        if isinstance(node, FieldNode):
            return self.eval_field_chain(node, dot, node.idents, (node,), _NO_FINAL)
        if isinstance(node, VariableNode):
            return self.eval_variable(node, (node,), _NO_FINAL)
        if isinstance(node, PipeNode):
            return self.eval_pipeline(dot, node)
        if isinstance(node, IdentifierNode):
            return self.eval_function(dot, node, node, (node,), _NO_FINAL)
        return self.eval_chain(dot, node, (node,), _NO_FINAL)

    def eval_variable(self, node: VariableNode, args: ArgNodes, final: object) -> object:
        self.at(node)
        value = self.var_value(node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(node, value, node.idents[1:], args, final)

    def eval_chain(self, dot: object, node: ChainNode, args: ArgNodes, final: object) -> object:
        # The parser rejects fields on literals (nil.X), so the term here is a pipeline or a function call.
        receiver = self.eval_arg(dot, node.node)
        return self.eval_field_chain(node, receiver, node.fields, args, final)

    def eval_field_chain(
        self, node: object, receiver: object, idents: Sequence[str], args: ArgNodes, final: object
    ) -> object:
        self.at(node)
        has_args = len(args) > 1 or final is not _NO_FINAL
        for position, name in enumerate(idents):
            last = position == len(idents) - 1
            receiver = self.eval_field(name, receiver, has_args and last, first=position == 0)
        return receiver

    def eval_field(self, name: str, receiver: object, has_args: bool, first: bool) -> object:
        if receiver is None:
            if first:
                return None
            self.fail(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, Mapping):
            if has_args:
                self.fail(f"{name} is not a method but has arguments")
            return receiver.get(name)
        if isinstance(receiver, GoStruct):
            try:
                value = receiver.go_field(name)
            except KeyError:
                self.fail(f"can't evaluate field {name} in type {go_type_name(receiver)}")
            if has_args:
                self.fail(f"{name} has arguments but cannot be invoked as function")
            return value
        self.fail(f"can't evaluate field {name} in type {go_type_name(receiver)}")

    def eval_function(
        self, dot: object, ident: IdentifierNode, cmd: CommandNode | IdentifierNode, args: ArgNodes, final: object
    ) -> object:
        name = ident.name
        function = self.functions[name]
        self.at(cmd)
        arg_nodes = args[1:]
        given = len(arg_nodes) + (0 if final is _NO_FINAL else 1)
        if function.variadic and given < function.min_args:
            self.fail(f"wrong number of args for {name}: want at least {function.min_args} got {given}")
        if not function.variadic and given != function.min_args:
            self.fail(f"wrong number of args for {name}: want {function.min_args} got {given}")
        if name in ("and", "or"):
            return self.eval_and_or(dot, name == "or", arg_nodes, final)
        values = [self.eval_arg(dot, node) for node in arg_nodes]
        if final is not _NO_FINAL:
            values.append(final)
        self.at(cmd)
        try:
            return function.call(values)
        except GoError as exc:
            self.fail(f"error calling {name}: {exc}")

    def eval_and_or(self, dot: object, is_or: bool, arg_nodes: ArgNodes, final: object) -> object:
        """Short-circuit: the first operand that decides the result, else the last one."""
        value: object = None
        for node in arg_nodes:
            value = self.eval_arg(dot, node)
            if is_true(value) is is_or:
                return value
        return value if final is _NO_FINAL else final


def execute(root: ListNode, source: str, functions: Mapping[str, Function], data: object) -> str:
    """Run the tree ``root`` (parsed from ``source``, used for error positions) with ``data`` as dot and ``$``."""
    state = _State(source, functions, data)
    state.walk(data, root)
    return "".join(state.out)
