"""Named SQL blocks that Core expresses badly, loaded once by name from ``*.sql`` files.

A block starts with a line ``-- name: <name>`` and runs until the next one.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import sqlalchemy as sa

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.M)


@cache
def _blocks() -> dict[str, str]:
    blocks: dict[str, str] = {}
    for path in sorted(Path(__file__).parent.glob("*.sql")):
        parts = _NAME.split(path.read_text())
        for name, body in zip(parts[1::2], parts[2::2]):
            if name in blocks:
                raise ValueError(f"duplicate SQL block {name!r} in {path.name}")
            blocks[name] = body.strip()
    return blocks


@cache
def query(name: str) -> sa.TextClause:
    """The block's statement, built once: ``sa.text`` parses its bind parameters with a regex
    (1.5% of the server's CPU under log PATCHes when built per call)."""
    return sa.text(_blocks()[name])
