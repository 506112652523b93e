"""CI/CD variable expressions of ``rules:if``, ``only:variables`` and ``workflow:rules``
(GitLab's ``Ci::Pipeline::Expression``).

    $VAR                  true when defined and not empty
    $A == "x"  $A != 'x'  string comparison; either side may be a variable, a string or null
    $A =~ /re/i  $A !~ /re/   regular expression (flags i, m, s, x); a variable on the right
                          holding "/re/" is used as a pattern; variables inside /.../ are not
                          expanded
    a && b  a || b  ( )   && binds tighter than ||

``parse`` raises ``ExpressionError`` for invalid syntax; ``evaluate`` never raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_EXPRESSION_LENGTH = 4096
MAX_DEPTH = 64
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<var>\$[A-Za-z_][A-Za-z0-9_]*)
    | (?P<str>"[^"]*"|'[^']*')
    | (?P<re>/(?:\\.|[^/\\])*/[a-z]*)
    | (?P<null>null\b)
    | (?P<op>==|!=|=~|!~|&&|\|\||\(|\))
    )""",
    re.X,
)
_PATTERN = re.compile(r"^/((?:\\.|[^/\\])*)/([a-z]*)$", re.S)
_FLAGS = {"i": re.I, "m": re.S, "s": re.S, "x": re.X}


class ExpressionError(ValueError):
    """The expression is not valid syntax."""


@dataclass(frozen=True)
class Node:
    kind: str  # var, str, re, null, ==, !=, =~, !~, &&, ||
    value: Any = None
    left: Node | None = None
    right: Node | None = None


def parse(text: str) -> Node:
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(text)
    tokens = _tokenize(text)
    parser = _Parser(tokens)
    node = parser.disjunction(0)
    if parser.position != len(tokens):
        raise ExpressionError(text)
    return node


def is_valid(text: Any) -> bool:
    try:
        parse(text)
    except ExpressionError:
        return False
    return True


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    stripped_end = len(text.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ExpressionError(text)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    if not tokens:
        raise ExpressionError(text)
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.position = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise ExpressionError("unexpected end")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def disjunction(self, depth: int) -> Node:
        node = self.conjunction(depth)
        while self.peek() == "||":
            self.take()
            node = Node("||", left=node, right=self.conjunction(depth))
        return node

    def conjunction(self, depth: int) -> Node:
        node = self.comparison(depth)
        while self.peek() == "&&":
            self.take()
            node = Node("&&", left=node, right=self.comparison(depth))
        return node

    def comparison(self, depth: int) -> Node:
        if self.peek() == "(":
            if depth >= MAX_DEPTH:
                raise ExpressionError("too deep")
            self.take()
            node = self.disjunction(depth + 1)
            if self.peek() != ")":
                raise ExpressionError("unbalanced parentheses")
            self.take()
            return node
        left = self.operand()
        if self.peek() in ("==", "!=", "=~", "!~"):
            operator = self.take()[1]
            right = self.operand()
            if operator in ("=~", "!~") and right.kind not in ("re", "var"):
                raise ExpressionError("a pattern is expected")
            return Node(operator, left=left, right=right)
        if left.kind == "re":
            raise ExpressionError("a pattern alone is not an expression")
        return left

    def operand(self) -> Node:
        kind, text = self.take()
        if kind == "var":
            return Node("var", text[1:])
        if kind == "str":
            return Node("str", text[1:-1])
        if kind == "null":
            return Node("null")
        if kind == "re":
            return Node("re", _compile(text))
        raise ExpressionError(text)


def _compile(text: str) -> re.Pattern[str] | None:
    match = _PATTERN.match(text)
    if not match:
        return None
    flags = 0
    for flag in match.group(2):
        if flag not in _FLAGS:
            raise ExpressionError(text)
        flags |= _FLAGS[flag]
    try:
        return re.compile(match.group(1), flags)
    except re.error as exc:
        raise ExpressionError(text) from exc


def evaluate(node: Node, variables: Mapping[str, str]) -> bool:
    """The truth of a parsed expression for these variables."""
    return bool(_value(node, variables))


def matches(text: str, variables: Mapping[str, str]) -> bool:
    """Parse and evaluate; an invalid expression is false."""
    try:
        return evaluate(parse(text), variables)
    except ExpressionError:
        return False


def _value(node: Node, variables: Mapping[str, str]) -> Any:
    kind = node.kind
    if kind == "var":
        return variables.get(node.value)
    if kind in ("str", "re"):
        return node.value
    if kind == "null":
        return None
    assert node.left is not None and node.right is not None
    if kind == "&&":
        return _truthy(_value(node.left, variables)) and _truthy(_value(node.right, variables))
    if kind == "||":
        return _truthy(_value(node.left, variables)) or _truthy(_value(node.right, variables))
    left, right = _value(node.left, variables), _value(node.right, variables)
    if kind == "==":
        return left == right
    if kind == "!=":
        return left != right
    found = _search(left, right)
    return found if kind == "=~" else not found


def _search(text: Any, pattern: Any) -> bool:
    if isinstance(pattern, str):  # a variable holding "/re/"
        try:
            pattern = _compile(pattern)
        except ExpressionError:
            return False
    if not isinstance(pattern, re.Pattern):
        return False
    return pattern.search("" if text is None else str(text)) is not None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value != ""
    return bool(value)
