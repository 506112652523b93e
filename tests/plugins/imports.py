"""What a package's modules import, read from their source (for purity and boundary tests)."""

from __future__ import annotations

import ast
from pathlib import Path


def imported_modules(package: Path) -> list[tuple[str, str]]:
    """(file name, imported module) for every import in the package's own modules."""
    found = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(path.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                # `from conveyor import ciconfig` imports conveyor.ciconfig
                found += [(path.name, f"{node.module}.{alias.name}") for alias in node.names]
    return found
