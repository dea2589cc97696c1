"""Recursive-descent parser from tokens to the node tree, after Go's ``text/template/parse``.

Checks made at parse time, as in Go: functions must exist, variables must be declared in an enclosing scope
(a variable lives until the ``{{end}}`` of the control structure that declares it), ``break``/``continue`` only
inside ``range``. ``{{else if ...}}`` (and ``{{else with ...}}``) is parsed as an ``else`` branch holding a nested
``if`` (``with``). ``define``/``template``/``block`` are not supported.

Errors raise ``TemplateError`` with Go's wording: ``template: :LINE: message``.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import NoReturn

from server.errors import TemplateError
from server.gocompat.strconv import quote

from .lexer import Token, TokenKind, lex
from .literals import parse_number, unquote
from .nodes import (
    ActionNode,
    ArgNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
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

__all__ = ["parse"]

_OPERAND_START = frozenset(
    {
        TokenKind.BOOL,
        TokenKind.CHAR_CONSTANT,
        TokenKind.DOT,
        TokenKind.FIELD,
        TokenKind.IDENTIFIER,
        TokenKind.NUMBER,
        TokenKind.NIL,
        TokenKind.RAW_STRING,
        TokenKind.STRING,
        TokenKind.VARIABLE,
        TokenKind.LEFT_PAREN,
    }
)


@dataclass(frozen=True)
class _End:
    pos: int

    def __str__(self) -> str:
        return "{{end}}"


@dataclass(frozen=True)
class _Else:
    pos: int

    def __str__(self) -> str:
        return "{{else}}"


class _Parser:
    def __init__(self, text: str, functions: Container[str]) -> None:
        self.tokens = lex(text)
        self.functions = functions
        self.index = 0
        self.line = 1
        self.action_line = 0
        self.vars = ["$"]
        self.range_depth = 0

    # --- token access ---------------------------------------------------------------------------------------

    def fail(self, message: str) -> NoReturn:
        raise TemplateError(f"template: :{self.line}: {message}")

    def _fetch(self, advance: bool) -> Token:
        token = self.tokens[self.index]
        self.line = token.line
        if token.kind is TokenKind.ERROR:
            extra = ""
            if self.action_line and self.action_line != token.line:
                extra = f" in action started at :{self.action_line}"
            self.fail(token.value + extra)
        if advance and token.kind is not TokenKind.EOF:
            self.index += 1
        return token

    def next(self) -> Token:
        return self._fetch(advance=True)

    def peek(self) -> Token:
        return self._fetch(advance=False)

    def backup(self) -> None:
        self.index -= 1

    def next_non_space(self) -> Token:
        token = self.next()
        while token.kind is TokenKind.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        if token.kind is not TokenKind.EOF:
            self.backup()
        return token

    def expect(self, kind: TokenKind, context: str) -> Token:
        token = self.next_non_space()
        if token.kind is not kind:
            self.unexpected(token, context)
        return token

    def unexpected(self, token: Token, context: str) -> NoReturn:
        self.fail(f"unexpected {token.describe()} in {context}")

    def is_keyword(self, token: Token, word: str) -> bool:
        return token.kind is TokenKind.KEYWORD and token.value == word

    # --- structure ------------------------------------------------------------------------------------------

    def parse(self) -> ListNode:
        nodes: list[Node] = []
        while self.peek().kind is not TokenKind.EOF:
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                self.fail(f"unexpected {node}")
            nodes.append(node)
        return ListNode(0, tuple(nodes))

    def item_list(self) -> tuple[ListNode, _End | _Else]:
        pos = self.peek_non_space().pos
        nodes: list[Node] = []
        while self.peek_non_space().kind is not TokenKind.EOF:
            node = self.text_or_action()
            if isinstance(node, _End | _Else):
                return ListNode(pos, tuple(nodes)), node
            nodes.append(node)
        self.fail("unexpected EOF")

    def text_or_action(self) -> Node | _End | _Else:
        token = self.next_non_space()
        if token.kind is TokenKind.TEXT:
            return TextNode(token.pos, token.value)
        if token.kind is TokenKind.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(token, "input")

    def action(self) -> Node | _End | _Else:
        token = self.next_non_space()
        if token.kind is TokenKind.KEYWORD:
            word = token.value
            if word in ("break", "continue"):
                return self.loop_control(token)
            if word == "else":
                return self.else_control()
            if word == "end":
                return _End(self.expect(TokenKind.RIGHT_DELIM, "end").pos)
            if word in ("if", "range", "with"):
                return self.branch(word)
            self.fail(f"{{{{{word}}}}} is not supported")
        self.backup()
        pos = self.peek().pos
        return ActionNode(pos, self.pipeline("command", TokenKind.RIGHT_DELIM))

    def loop_control(self, keyword: Token) -> BreakNode | ContinueNode:
        token = self.next_non_space()
        if token.kind is not TokenKind.RIGHT_DELIM:
            self.unexpected(token, f"{{{{{keyword.value}}}}}")
        if self.range_depth == 0:
            self.fail(f"{{{{{keyword.value}}}}} outside {{{{range}}}}")
        return BreakNode(keyword.pos) if keyword.value == "break" else ContinueNode(keyword.pos)

    def else_control(self) -> _Else:
        token = self.peek_non_space()
        if self.is_keyword(token, "if") or self.is_keyword(token, "with"):
            # "else if" / "else with": leave the keyword for branch() to parse as a nested control.
            return _Else(token.pos)
        return _Else(self.expect(TokenKind.RIGHT_DELIM, "else").pos)

    def branch(self, context: str) -> IfNode | RangeNode | WithNode:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, TokenKind.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, end = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(end, _Else):
                following = self.peek()
                if context in ("if", "with") and self.is_keyword(following, context):
                    self.next()
                    else_list = ListNode(end.pos, (self.branch(context),))
                else:
                    else_list, end = self.item_list()
                    if not isinstance(end, _End):
                        self.fail(f"expected end; found {end}")
        finally:
            del self.vars[mark:]
        if context == "range":
            return RangeNode(pipe.pos, pipe, body, else_list)
        if context == "with":
            return WithNode(pipe.pos, pipe, body, else_list)
        return IfNode(pipe.pos, pipe, body, else_list)

    # --- pipelines and operands -----------------------------------------------------------------------------

    def declarations(self, context: str) -> tuple[list[VariableNode], bool]:
        decl: list[VariableNode] = []
        is_assign = False
        while True:
            start = self.index
            variable = self.peek_non_space()
            if variable.kind is not TokenKind.VARIABLE:
                self.index = start
                return decl, is_assign
            self.next()
            after = self.peek_non_space()
            if after.kind in (TokenKind.ASSIGN, TokenKind.DECLARE):
                self.next()
                decl.append(VariableNode(variable.pos, (variable.value,)))
                self.vars.append(variable.value)
                return decl, after.kind is TokenKind.ASSIGN
            if after.kind is TokenKind.CHAR and after.value == ",":
                self.next()
                decl.append(VariableNode(variable.pos, (variable.value,)))
                self.vars.append(variable.value)
                if context == "range" and len(decl) < 2:
                    if self.peek_non_space().kind in (
                        TokenKind.VARIABLE,
                        TokenKind.RIGHT_DELIM,
                        TokenKind.RIGHT_PAREN,
                    ):
                        continue
                    self.fail("range can only initialize variables")
                self.fail(f"too many declarations in {context}")
            self.index = start
            return decl, is_assign

    def pipeline(self, context: str, end: TokenKind) -> PipeNode:
        pos = self.peek_non_space().pos
        decl, is_assign = self.declarations(context)
        cmds: list[CommandNode] = []
        while True:
            token = self.next_non_space()
            if token.kind is end:
                if not cmds:
                    self.fail(f"missing value for {context}")
                for stage, cmd in enumerate(cmds[1:], start=2):
                    if isinstance(cmd.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                        self.fail(f"non executable command in pipeline stage {stage}")
                return PipeNode(pos, tuple(decl), is_assign, tuple(cmds))
            if token.kind in _OPERAND_START:
                self.backup()
                cmds.append(self.command())
            else:
                self.unexpected(token, context)

    def command(self) -> CommandNode:
        pos = self.peek_non_space().pos
        args: list[ArgNode] = []
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            token = self.next()
            if token.kind is TokenKind.SPACE:
                continue
            if token.kind in (TokenKind.RIGHT_DELIM, TokenKind.RIGHT_PAREN):
                self.backup()
            elif token.kind is not TokenKind.PIPE:
                self.unexpected(token, "operand")
            break
        if not args:
            self.fail("empty command")
        return CommandNode(pos, tuple(args))

    def operand(self) -> ArgNode | None:
        node = self.term()
        if node is None or self.peek().kind is not TokenKind.FIELD:
            return node
        pos = self.peek().pos
        fields: list[str] = []
        while self.peek().kind is TokenKind.FIELD:
            fields.append(self.next().value[1:])
        if isinstance(node, FieldNode):
            return FieldNode(node.pos, node.idents + tuple(fields))
        if isinstance(node, VariableNode):
            return VariableNode(node.pos, node.idents + tuple(fields))
        if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
            self.fail(f"unexpected . after term {quote(str(node))}")
        return ChainNode(pos, node, tuple(fields))

    def term(self) -> ArgNode | None:
        token = self.next_non_space()
        kind = token.kind
        if kind is TokenKind.IDENTIFIER:
            if token.value not in self.functions:
                self.fail(f"function {quote(token.value)} not defined")
            return IdentifierNode(token.pos, token.value)
        if kind is TokenKind.DOT:
            return DotNode(token.pos)
        if kind is TokenKind.NIL:
            return NilNode(token.pos)
        if kind is TokenKind.VARIABLE:
            if token.value not in self.vars:
                self.fail(f"undefined variable {quote(token.value)}")
            return VariableNode(token.pos, (token.value,))
        if kind is TokenKind.FIELD:
            return FieldNode(token.pos, (token.value[1:],))
        if kind is TokenKind.BOOL:
            return BoolNode(token.pos, token.value == "true")
        if kind in (TokenKind.NUMBER, TokenKind.CHAR_CONSTANT):
            try:
                return NumberNode(token.pos, token.value, parse_number(token.value))
            except ValueError as exc:
                self.fail(str(exc))
        if kind is TokenKind.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", TokenKind.RIGHT_PAREN)
        if kind in (TokenKind.STRING, TokenKind.RAW_STRING):
            try:
                return StringNode(token.pos, token.value, unquote(token.value))
            except ValueError as exc:
                self.fail(str(exc))
        if kind is not TokenKind.EOF:
            self.backup()
        return None


def parse(text: str, functions: Container[str]) -> ListNode:
    """Parse template source into its root list. ``functions`` names the functions the template may call."""
    return _Parser(text, functions).parse()
