"""A branch read straight from a local repository's ref files, without a git process.

``read_branch`` answers only the plain case of git's files ref backend: ``<ref>`` is a branch
(``refs/heads/<ref>``, a loose file or a ``packed-refs`` line) and neither ``refs/<ref>`` nor
``refs/tags/<ref>`` exists (those come first in rev-parse's order). Anything else (a tag, a
symbolic or odd ref, a reftable repository, a ``.git`` file of a linked worktree, a name git
would refuse) is None: the caller asks git. A branch always points at a commit (git's rule).
"""

from __future__ import annotations

import re
from pathlib import Path

_SHA = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")
# what check-ref-format refuses, plus what could leave the refs directory
_ODD = re.compile(r"(^|/)\.|\.\.|//|[\x00-\x20\x7f~^:?*\[\\]|@\{|\.lock(/|$)|/$|^/|\.$")


def git_dir(repo: str) -> Path | None:
    """``repo``'s git directory (a work tree's ``.git`` or a bare repository), None otherwise."""
    path = Path(repo)
    for candidate in (path / ".git", path):
        if (candidate / "HEAD").is_file() and (candidate / "refs").is_dir():
            return None if (candidate / "reftable").exists() else candidate
    return None


def read_branch(repo: str, ref: str) -> str | None:
    """The commit id of branch ``ref`` of the local repository ``repo`` when that is all the name
    can mean; None when git must answer."""
    if not ref or _ODD.search(ref):
        return None
    root = git_dir(repo)
    if root is None or (root / ref).exists():  # $GIT_DIR/<ref> comes first of all (HEAD, ORIG_HEAD...)
        return None
    try:
        packed = (root / "packed-refs").read_bytes()
    except FileNotFoundError:
        packed = b""
    except OSError:
        return None
    found: dict[str, bytes | None] = {}
    for name in (f"refs/{ref}", f"refs/tags/{ref}", f"refs/heads/{ref}"):
        try:
            found[name] = (root / name).read_bytes().strip()
        except (FileNotFoundError, NotADirectoryError):
            found[name] = _packed(packed, name)
        except OSError:  # a directory of that name (refs/heads/a/b for ref a), unreadable...
            return None
    branch = found[f"refs/heads/{ref}"]
    if branch is None or found[f"refs/{ref}"] is not None or found[f"refs/tags/{ref}"] is not None:
        return None
    return branch.decode() if _SHA.fullmatch(branch) else None


def _packed(packed: bytes, name: str) -> bytes | None:
    """``name``'s object id in a ``packed-refs`` file (``<id> <name>`` lines), or None."""
    suffix = b" " + name.encode()
    for line in packed.splitlines():
        if line.endswith(suffix) and not line.startswith((b"#", b"^")):
            return line[: -len(suffix)]
    return None
