"""Cases for the building blocks: rules:if expressions, fnmatch globs (rules:changes/exists),
include wildcards, and variable expansion ($VAR, ${VAR}, $$, expand_all)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.ciconfig import expansion, expressions, globs

pytestmark = pytest.mark.unit

VARIABLES = {"A": "x", "EMPTY": "", "REF": "feature/login", "PATTERN": "/^feat/", "BAD": "feat"}

EXPRESSIONS = [
    ("$A", True), ("$EMPTY", False), ("$MISSING", False),
    ('$A == "x"', True), ("$A == 'x'", True), ('$A == "y"', False), ('$A != "y"', True),
    ("$MISSING == null", True), ("$EMPTY == null", False), ('$EMPTY == ""', True), ("$A != null", True),
    ("null == $MISSING", True), ("$A == $A", True), ('"x" == $A', True),
    ("$REF =~ /^feature/", True), ("$REF =~ /^FEATURE/i", True), ("$REF =~ /^FEATURE/", False),
    ("$REF !~ /^main$/", True), ("$MISSING =~ /.*/", True), ("$REF =~ $PATTERN", True),
    ("$REF =~ $BAD", False), ("$REF =~ /login$/", True), ("$REF =~ /feature\\/login/", True),
    ("$A && $EMPTY", False), ("$A || $EMPTY", True), ("$EMPTY || $MISSING || $A", True),
    ("$EMPTY && $MISSING || $A", True), ("$EMPTY && ($MISSING || $A)", False),
    ('($A == "x" || $A == "y") && $REF =~ /feature/', True), ("(($A))", True),
    ("$A=='x'&&$REF=~/f/", True),
]
INVALID = ["", "   ", "${A} == 'x'", "$A ==", "($A", "$A)", "$A = 'x'", "/re/", "$A =~ 'x'", "A == 'x'",
           "$A == 'x' &&", "&& $A", "$A === 'x'", "$A =~ /(/", "$A =~ /x/q", "$A $B"]


@pytest.mark.parametrize(("text", "expected"), EXPRESSIONS)
def test_expression(text: str, expected: bool) -> None:
    assert expressions.evaluate(expressions.parse(text), VARIABLES) is expected


@pytest.mark.parametrize("text", INVALID)
def test_invalid_expression(text: str) -> None:
    assert not expressions.is_valid(text)
    with pytest.raises(expressions.ExpressionError):
        expressions.parse(text)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from(list("$AB ()=!~&|/\"'xnul")), max_size=40))
def test_parse_never_raises_anything_but_expression_error(text: str) -> None:
    try:
        node = expressions.parse(text)
    except expressions.ExpressionError:
        return
    assert isinstance(expressions.evaluate(node, VARIABLES), bool)


GLOBS = [
    ("src/*", "src/a.py", True), ("src/*", "src/sub/a.py", False), ("src/**/*", "src/sub/a.py", True),
    ("src/**/*", "src/a.py", True), ("**/*.md", "README.md", True), ("**/*.md", "docs/a/b.md", True),
    ("*.md", "docs/a.md", False), ("*.{md,txt}", "a.txt", True), ("*.{md,txt}", "a.py", False),
    ("docs/{a,b/{c,d}}.md", "docs/b/d.md", True), ("file?.txt", "file1.txt", True),
    ("file?.txt", "file10.txt", False), ("[ab].txt", "a.txt", True), ("[!ab].txt", "a.txt", False),
    (".*", ".env", True), ("*", ".env", True), ("Dockerfile", "Dockerfile", True),
    ("src/", "src/a.py", False), ("a\\*b", "a*b", True), ("{unbalanced", "{unbalanced", True),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), GLOBS)
def test_fnmatch(pattern: str, path: str, expected: bool) -> None:
    assert globs.fnmatch(pattern, path) is expected


WILDCARDS = [
    ("configs/*.yml", "configs/a.yml", True), ("configs/*.yml", "configs/sub/a.yml", False),
    ("configs/**.yml", "configs/a.yml", True), ("configs/**.yml", "configs/sub/a.yml", True),
    ("configs/**/*.yml", "configs/a.yml", False), ("configs/**/*.yml", "configs/sub/a.yml", True),
    ("/configs/*.yml", "configs/a.yml", True),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), WILDCARDS)
def test_include_wildcard(pattern: str, path: str, expected: bool) -> None:
    assert (globs.wildcard_regex(pattern).match(path) is not None) is expected


EXPANSIONS = [
    ("$A", "x"), ("${A}", "x"), ("a$A-b", "ax-b"), ("$$A", "$A"), ("$$", "$"), ("$MISSING", ""),
    ("${A}${A}", "xx"), ("$", "$"), ("$1", "$1"), ("100%", "100%"),
]


@pytest.mark.parametrize(("text", "expected"), EXPANSIONS)
def test_expand(text: str, expected: str) -> None:
    assert expansion.expand(text, {"A": "x"}) == expected


def test_expand_existing_keeps_unknown_and_escapes() -> None:
    assert expansion.expand_existing("$A/$MISSING/$$A/${A}", {"A": "x"}) == "x/$MISSING/$$A/x"


def test_expand_all_resolves_chains_in_any_order_and_keeps_cycles_and_raw() -> None:
    found = expansion.expand_all(
        {"C": "$B-c", "B": "$A-b", "A": "a", "LOOP1": "$LOOP2", "LOOP2": "$LOOP1", "RAW": "$A",
         "HOME_DIR": "$HOME/x", "DOLLAR": "$$TMP", "USE": "$DOLLAR"},
        raw={"RAW"},
    )
    assert found["C"] == "a-b-c"
    assert found["RAW"] == "$A"
    assert found["HOME_DIR"] == "$HOME/x"
    assert found["DOLLAR"] == "$TMP"
    assert found["USE"] == "$TMP"  # an escaped $ is not expanded again
    assert {found["LOOP1"], found["LOOP2"]} <= {"$LOOP1", "$LOOP2"}


def test_expand_all_handles_long_chains_without_recursion() -> None:
    variables = {f"V{i}": f"${{V{i + 1}}}" for i in range(5000)}
    variables["V5000"] = "end"
    assert expansion.expand_all(variables)["V0"] == "end"
