"""Which files of a project an ``artifacts:``/``cache:`` entry means, and zip archives of them.

``paths`` are globs relative to the project directory (``**`` crosses directories; a matched
directory brings everything below it), ``exclude`` removes matches, ``untracked`` adds what
``git ls-files --others`` lists. Nothing outside the project directory is ever archived, and
extraction refuses absolute names and ``..`` so an archive cannot write outside its target.
Blocking file work; callers run it in a thread.
"""

from __future__ import annotations

import subprocess
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from conveyor.runner.errors import RunnerError


class ArchiveError(RunnerError):
    """An archive could not be written or read safely."""


def _expand(root: Path, pattern: str) -> set[Path]:
    pattern = pattern.strip().lstrip("/")
    if pattern.startswith("./"):
        pattern = pattern[2:]
    if not pattern or pattern in (".", "*", "**"):
        matches = {root}
    else:
        matches = set(root.glob(pattern.rstrip("/")))
    found: set[Path] = set()
    for match in matches:
        if match.is_dir() and not match.is_symlink():
            found.update(p for p in match.rglob("*") if p.is_file() or p.is_symlink())
        elif match.is_file() or match.is_symlink():
            found.add(match)
    return found


def _inside(root: Path, path: Path) -> bool:
    try:
        path.parent.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def untracked(root: Path) -> set[Path]:
    if not (root / ".git").exists():
        return set()
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "-z"],
                            capture_output=True, check=False)  # fmt: skip
    return {root / name for name in listed.stdout.decode(errors="replace").split("\0") if name}


def collect(root: Path, paths: Iterable[str], exclude: Iterable[str] = (), include_untracked: bool = False) -> list[str]:
    """Sorted POSIX paths relative to ``root`` of every file the entry names."""
    files: set[Path] = set()
    for pattern in paths:
        files |= _expand(root, pattern)
    if include_untracked:
        files |= {p for p in untracked(root) if p.is_file()}
    for pattern in exclude:
        files -= _expand(root, pattern)
    git_dir = root / ".git"
    return sorted(
        p.relative_to(root).as_posix()
        for p in files
        if _inside(root, p) and git_dir not in p.parents and p != root
    )


def write_zip(root: Path, names: Iterable[str], destination: Path) -> int:
    """Zip ``names`` (relative to ``root``) into ``destination``; returns the file count."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            path = root / name
            if path.is_symlink():
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o120777 << 16  # a symlink, as zip tools store it
                archive.writestr(info, str(path.readlink()))
            else:
                archive.write(path, name)
            count += 1
    return count


def extract_zip(source: Path, root: Path) -> int:
    """Extract ``source`` into ``root``; returns the number of entries.

    Raises:
        ArchiveError: the file is not a zip or names a path outside ``root``.
    """
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
            for member in members:
                name = PurePosixPath(member.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise ArchiveError(f"refusing to extract {member.filename!r}: outside the project")
            root.mkdir(parents=True, exist_ok=True)
            for member in members:
                if (member.external_attr >> 16) & 0o170000 == 0o120000:
                    target = root / member.filename
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.unlink(missing_ok=True)
                    target.symlink_to(archive.read(member).decode())
                else:
                    archive.extract(member, root)
            return len(members)
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"{source.name} is not a zip archive: {exc}") from exc
