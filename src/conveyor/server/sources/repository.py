"""Reading a project's repository for GitLab's repository API: branches, commits, the tree, a
file's bytes. Every read is one ``git`` subprocess; unknown refs and paths answer None (the API
turns them into GitLab's 404s)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor.server.sources.git import GitSources

_FIELDS = ("id", "parent_ids", "author_name", "author_email", "authored_date",
           "committer_name", "committer_email", "committed_date", "message")
_LOG_FORMAT = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B%x1e"
_REF_FORMAT = ("%(refname:short)%00%(objectname)%00%(parent)%00%(authorname)%00%(authoremail:trim)%00"
               "%(authordate:iso-strict)%00%(committername)%00%(committeremail:trim)%00%(committerdate:iso-strict)%00"
               "%(contents)%1e")


@dataclass(frozen=True)
class CommitQuery:
    ref: str
    since: str | None = None
    until: str | None = None
    path: str | None = None
    all: bool = False


def _commit(fields: list[str]) -> dict[str, Any]:
    commit: dict[str, Any] = dict(zip(_FIELDS, fields, strict=True))
    commit["parent_ids"] = commit["parent_ids"].split()
    return commit


def _records(out: bytes) -> list[list[str]]:
    text = out.decode(errors="replace")
    return [record.lstrip("\n").split("\0") for record in text.split("\x1e") if record.strip()]


class Repository:
    def __init__(self, sources: GitSources) -> None:
        self._sources = sources

    async def branches(self, source: str) -> list[dict[str, Any]]:
        """Every branch, by name, with its head commit (``name`` plus the commit's fields)."""
        out = await self._sources.output(source, "for-each-ref", "refs/heads", f"--format={_REF_FORMAT}", "--sort=refname")
        found = []
        for fields in _records(out or b""):
            if len(fields) == len(_FIELDS) + 1:
                found.append({"name": fields[0], "commit": _commit(fields[1:])})
        return found

    async def commits(self, source: str, query: CommitQuery, limit: int, offset: int) -> tuple[list[dict[str, Any]], int] | None:
        """A page of the history of ``ref`` (newest first) and its length; None for an unknown ref."""
        selection = ["--all"] if query.all else [query.ref, "--"]
        bounds = [f"--since={query.since}"] * bool(query.since) + [f"--until={query.until}"] * bool(query.until)
        paths = [query.path] if query.path else []
        if not query.all and await self.resolve(source, query.ref) is None:
            return None
        counted = await self._sources.output(source, "rev-list", "--count", *bounds, *selection[:1], *(["--"] + paths if paths else []))
        out = await self._sources.output(
            source, "log", f"--format={_LOG_FORMAT}", f"--skip={offset}", f"--max-count={limit}", *bounds, *selection, *paths
        )
        if out is None:
            return None
        return [_commit(fields) for fields in _records(out) if len(fields) == len(_FIELDS)], int((counted or b"0").strip() or 0)

    async def commit(self, source: str, ref: str) -> dict[str, Any] | None:
        """One commit by sha, branch or tag, with ``stats`` (additions, deletions)."""
        sha = await self.resolve(source, ref)
        if sha is None:
            return None
        out = await self._sources.output(source, "show", "-s", f"--format={_LOG_FORMAT}", sha, "--")
        records = _records(out or b"")
        if not records or len(records[0]) != len(_FIELDS):
            return None
        commit = _commit(records[0])
        numstat = await self._sources.output(source, "show", "--numstat", "--format=", sha, "--")
        added = deleted = 0
        for line in (numstat or b"").decode(errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
                added, deleted = added + int(parts[0]), deleted + int(parts[1])
        commit["stats"] = {"additions": added, "deletions": deleted, "total": added + deleted}
        return commit

    async def resolve(self, source: str, ref: str) -> str | None:
        if ref.startswith("-"):
            return None
        out = await self._sources.output(source, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return out.decode().strip() if out else None

    async def tree(self, source: str, ref: str, path: str, recursive: bool) -> list[dict[str, str]] | None:
        """The entries under ``path`` at ``ref``: ``id``, ``name``, ``type``, ``path``, ``mode``."""
        sha = await self.resolve(source, ref)
        if sha is None:
            return None
        target = f"{sha}:{path.strip('/')}" if path.strip("/") else sha
        out = await self._sources.output(source, "ls-tree", "-z", *(["-r"] if recursive else []), target)
        if out is None:
            return None
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        entries = []
        for item in out.decode(errors="replace").split("\0"):
            if not item:
                continue
            meta, _, name = item.partition("\t")
            mode, kind, object_id = meta.split(" ")
            entries.append({"id": object_id, "name": name.rsplit("/", 1)[-1], "type": kind, "path": prefix + name, "mode": mode})
        return entries

    async def raw(self, source: str, ref: str, path: str) -> bytes | None:
        """The bytes of the file ``path`` at ``ref``, or None."""
        sha = await self.resolve(source, ref)
        if sha is None or not path or path.startswith("-"):
            return None
        return await self._sources.output(source, "cat-file", "blob", f"{sha}:{path.lstrip('/')}")
