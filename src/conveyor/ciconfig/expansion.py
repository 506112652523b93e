"""CI/CD variable expansion: ``$VAR``, ``${VAR}`` and ``$$`` (a literal ``$``).

``expand`` is what the runner does to a value; ``expand_existing`` is what GitLab does when it
expands a keyword at pipeline creation (``environment:name``, ``tags``, ``resource_group``,
``rules:changes`` paths): unknown variables stay as written. ``expand_all`` expands a whole set
of variables against each other, in any order (GitLab's ``sort_and_expand_all``), leaving the
``raw`` ones (``expand: false``) untouched, and references to undefined variables (they may be
the shell's, like ``$HOME``) or circular ones as written.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

_REFERENCE = re.compile(r"\$\$|\$([A-Za-z_][A-Za-z0-9_]*)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with variables replaced; unknown ones become empty, ``$$`` becomes ``$``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return variables.get(match.group(1) or match.group(2), "")

    return _REFERENCE.sub(substitute, text)


def expand_existing(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with known variables replaced; unknown references and ``$$`` stay as written."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name is None or name not in variables:
            return match.group(0)
        return variables[name]

    return _REFERENCE.sub(substitute, text)


def references(text: str) -> list[str]:
    """The variable names ``text`` refers to."""
    return [m.group(1) or m.group(2) for m in _REFERENCE.finditer(text) if m.group(0) != "$$"]


def expand_all(variables: Mapping[str, str], raw: Collection[str] = ()) -> dict[str, str]:
    """Every variable expanded with the others' expanded values (depth first, memoised)."""
    done: dict[str, str] = {}
    for root in variables:
        if root in done:
            continue
        # An explicit stack: a chain of thousands of variables must not exhaust recursion.
        stack, visiting = [root], {root}
        while stack:
            name = stack[-1]
            pending = [
                ref
                for ref in ([] if name in raw else references(variables[name]))
                if ref in variables and ref not in done and ref not in visiting
            ]
            if pending:
                stack.append(pending[0])
                visiting.add(pending[0])
                continue
            stack.pop()
            visiting.discard(name)
            if name in raw:
                done[name] = variables[name]
                continue
            # A reference still being visited is circular, one to an undefined variable may be
            # the shell's ($HOME): both stay as written.
            done[name] = _expand_known(variables[name], done)
    return done


def _expand_known(text: str, known: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(2)
        return known.get(name, match.group(0))

    return _REFERENCE.sub(substitute, text)
