"""Git access for pipelines, through ``git`` subprocesses run from threads of its own (never
blocking the event loop).

What a commit's id fixes (a file at the commit, its tree, parent, message, the diff between two
commits) never changes, so those answers are remembered per source and object id (``IMMUTABLE``
entries, least recently used dropped). Refs (branches, tags, the default branch) are always asked
afresh, a local repository's plain branch from its ref file (``refs.py``), so a pipeline for a
commit seen before spawns no git process; a new commit's config, parent and message come from one.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
import subprocess
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from conveyor.server.errors import BadRequest
from conveyor.server.sources import refs


class GitError(BadRequest):
    """git failed."""


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256: never a ref name
IMMUTABLE = 512  # remembered answers about object ids
_REF_FORMAT = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)"
# a commit's parents, author, committer date (ISO 8601 with its offset) and message, in one read
_COMMIT_FORMAT = "%P%x00%an%x00%ae%x00%cI%x00%B"
T = TypeVar("T")
GIT_THREADS = 16  # git processes waited for at once (a slow remote's fetch holds one for its length)


def redact(text: str) -> str:
    """Credentials in URLs (``https://user:token@host``) replaced, for errors and logs."""
    return _USERINFO.sub("[MASKED]@", text)


def is_remote(source: str) -> bool:
    return "://" in source and not source.startswith("file://") or source.startswith("git@")


class GitSources:
    def __init__(self, mirrors_dir: Path, timeout: float = 120.0) -> None:
        self._mirrors = mirrors_dir
        self._timeout = timeout
        self._known: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        # threads of their own: a fetch from a slow remote never holds up asyncio.to_thread's pool
        self._threads = ThreadPoolExecutor(GIT_THREADS, thread_name_prefix="git")

    async def _immutable(self, key: tuple[Any, ...], ids: tuple[str | None, ...], compute: Callable[[], Awaitable[T]]) -> T:
        """``compute()``'s answer, remembered under ``key`` when every one of ``ids`` is a full
        object id and the answer is not empty (an empty one may be a failed or unfetched read)."""
        if not all(i is None or _OBJECT_ID.fullmatch(i) for i in ids):
            return await compute()
        if key in self._known:
            self._known.move_to_end(key)
            return _copy(self._known[key])
        value = await compute()
        if value:
            self._known[key] = _copy(value)
            while len(self._known) > IMMUTABLE:
                self._known.popitem(last=False)
        return value

    def clone_url(self, source: str) -> str:
        """The URL a runner fetches from: remote URLs as they are, local paths as file:// URLs."""
        if is_remote(source) or source.startswith("file://"):
            return source
        return Path(source).resolve().as_uri()

    async def git_dir(self, source: str) -> str:
        """A local repository for ``source``: the path itself, or a refreshed bare mirror."""
        if not is_remote(source):
            return source[len("file://") :] if source.startswith("file://") else source
        mirror = self._mirrors / (hashlib.sha256(source.encode()).hexdigest()[:16] + ".git")
        if not mirror.exists():
            mirror.parent.mkdir(parents=True, exist_ok=True)
            await self._git(None, "clone", "--mirror", "--quiet", source, str(mirror))
        else:
            await self._git(str(mirror), "fetch", "--prune", "--quiet", "origin")
        return str(mirror)

    async def default_branch(self, source: str) -> str:
        repo = await self.git_dir(source)
        out = await self._git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return out.strip() or "main"

    async def resolve(self, source: str, ref: str) -> str:
        """The commit sha ``ref`` points at."""
        repo = await self.git_dir(source)
        return (await self._git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")).strip()

    async def resolve_ref(self, source: str, ref: str) -> tuple[str, bool]:
        """``resolve`` and ``is_tag`` of ``ref``, in one git process when it names a branch or a
        tag (else as those two do). A tag wins over a branch of the same name, as in git's
        rev-parse; an annotated tag gives its commit."""
        names = (f"refs/{ref}", f"refs/tags/{ref}", f"refs/heads/{ref}")  # rev-parse's order
        if not is_remote(source):
            branch = refs.read_branch(source[len("file://"):] if source.startswith("file://") else source, ref)
            if branch is not None:  # a branch, and no tag or other ref of that name: no git process
                return branch, False
        repo = await self.git_dir(source)
        out = await self._git(repo, "for-each-ref", f"--format={_REF_FORMAT}", *names, check=False)
        found = {}
        for line in out.splitlines():
            name, *fields = line.split("\0")
            found[name] = fields
        first = next((name for name in names if name in found), None)  # for-each-ref also lists refs/tags/v1/x
        if first is not None and first != names[0]:
            kind, sha, peeled_kind, peeled = found[first]
            if kind == "tag" and peeled_kind == "commit":
                return peeled, True
            if kind == "commit":
                return sha, first == names[1]
        return await self.resolve(source, ref), await self.is_tag(source, ref)

    async def read_with_commit(self, source: str, sha: str, path: str) -> str | None:
        """``read_file`` of ``path`` at commit ``sha``, its ``commit_info`` and ``parent`` read
        with it in one git process (all remembered); as ``read_file`` when that fails."""
        if not _OBJECT_ID.fullmatch(sha) or ("show", source, sha, path) in self._known:
            return await self.read_file(source, sha, path)
        repo = await self.git_dir(source)
        out = await self._git(repo, "show", "-s", f"--format={_COMMIT_FORMAT}%x00%x00", sha, f"{sha}:{path}", check=False)
        head, found, text = out.partition("\0\0\n")  # git show ends the commit with a newline, then the blob
        commit = _commit_fields(head) if found else {}
        if not commit or not text:
            return await self.read_file(source, sha, path)
        for key, value in ((("commit", source, sha), commit), (("show", source, sha, path), text)):
            await self._immutable(key, (sha,), lambda v=value: _value(v))
        return text

    async def read_file(self, source: str, sha: str, path: str) -> str | None:
        async def read() -> str | None:
            repo = await self.git_dir(source)
            out = await self._git(repo, "show", f"{sha}:{path}", check=False)
            return out if out else None

        return await self._immutable(("show", source, sha, path), (sha,), read)

    async def list_files(self, source: str, sha: str) -> list[str]:
        """Every file path in the tree of ``sha`` (for ``rules:exists`` and include wildcards)."""
        async def read() -> list[str]:
            repo = await self.git_dir(source)
            out = await self._git(repo, "ls-tree", "-r", "-z", "--name-only", sha, check=False)
            return [path for path in out.split("\0") if path]

        return await self._immutable(("ls-tree", source, sha), (sha,), read)

    async def is_tag(self, source: str, ref: str) -> bool:
        repo = await self.git_dir(source)
        out = await self._git(repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{ref}", check=False)
        return bool(out.strip())

    async def blob_id(self, source: str, sha: str, path: str) -> str | None:
        """The blob id of ``path`` at ``sha`` (None when there is no such file)."""
        async def read() -> str | None:
            repo = await self.git_dir(source)
            out = await self._git(repo, "rev-parse", "--verify", "--quiet", f"{sha}:{path}", check=False)
            return out.strip() or None

        return await self._immutable(("blob", source, sha, path), (sha,), read)

    async def last_commit(self, source: str, sha: str, path: str) -> str | None:
        """The last commit up to ``sha`` that changed ``path``."""
        repo = await self.git_dir(source)
        out = await self._git(repo, "log", "-1", "--format=%H", sha, "--", path, check=False)
        return out.strip() or None

    async def changed_since(self, source: str, ref: str, sha: str) -> list[str] | None:
        """Files changed on ``sha`` since it forked from ``ref`` (``rules:changes:compare_to``,
        GitLab's non-straight compare); None when ``ref`` does not exist."""
        repo = await self.git_dir(source)
        base = (await self._git(repo, "merge-base", ref, sha, check=False)).strip()
        if not base:
            return None
        out = await self._git(repo, "diff", "--name-only", "-z", "--no-renames", base, sha, "--", check=False)
        return [path for path in out.split("\0") if path]

    async def tags(self, source: str) -> list[str]:
        repo = await self.git_dir(source)
        out = await self._git(repo, "tag", "--list", check=False)
        return [line.strip() for line in out.splitlines() if line.strip()]

    async def parent(self, source: str, sha: str) -> str | None:
        """The first parent of ``sha``, or None for a root commit (read with ``commit_info``)."""
        commit = await self._commit(source, sha)
        if commit:
            return commit["parents"].split(" ")[0] or None
        repo = await self.git_dir(source)  # not a commit id: a revision git resolves
        out = await self._git(repo, "rev-parse", "--verify", "--quiet", f"{sha}^1", check=False)
        return out.strip() or None

    async def commit_info(self, source: str, sha: str) -> dict[str, str]:
        """``{message, author_name, author_email, timestamp}`` of a commit (committer date,
        ISO 8601 with its offset, as GitLab's ``CI_COMMIT_TIMESTAMP``); empty when unreadable."""
        commit = await self._commit(source, sha)
        return {k: v for k, v in commit.items() if k != "parents"}

    async def _commit(self, source: str, sha: str) -> dict[str, str]:
        """A commit's parents (space-separated) and ``commit_info``, from one git process."""
        async def read() -> dict[str, str]:
            repo = await self.git_dir(source)
            return _commit_fields(await self._git(repo, "show", "-s", f"--format={_COMMIT_FORMAT}", sha, "--", check=False))

        return await self._immutable(("commit", source, sha), (sha,), read)

    async def tag_message(self, source: str, tag: str) -> str:
        """An annotated tag's message ("" for a lightweight tag)."""
        repo = await self.git_dir(source)
        out = await self._git(repo, "for-each-ref", f"refs/tags/{tag}", "--format=%(contents)", check=False)
        return out.rstrip("\n")

    async def changed_files(self, source: str, base: str | None, sha: str) -> list[str]:
        """Paths that differ between ``base`` and ``sha``; every path when ``base`` is None."""
        if base is None:
            return await self.list_files(source, sha)

        async def read() -> list[str]:
            repo = await self.git_dir(source)
            out = await self._git(repo, "diff", "--name-only", "-z", "--no-renames", base, sha, "--", check=False)
            return [path for path in out.split("\0") if path]

        return await self._immutable(("diff", source, base, sha), (base, sha), read)

    async def ls_remote(self, source: str, timeout: float = 30.0) -> dict[str, str]:
        """{ref: sha} of the branches and tags of ``source`` (``git ls-remote`` with a timeout;
        git's HTTP transport sets TCP keepalive on its sockets). Peeled tags give their commit."""
        url = source if is_remote(source) or source.startswith("file://") else str(Path(source).resolve())
        out = await self._git(None, "ls-remote", "--heads", "--tags", url, timeout=timeout)
        heads: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref.endswith("^{}"):
                heads[ref[:-3]] = sha  # an annotated tag: build the commit it points at
            elif ref not in heads:
                heads[ref] = sha
        return heads

    async def output(self, source: str, *args: str) -> bytes | None:
        """What ``git <args>`` prints in ``source``'s repository, or None when git fails (an
        unknown ref or path): the repository browser's reads."""
        repo = await self.git_dir(source)
        out = await self._git_bytes(repo, *args, check=False)
        return out

    async def _git(self, repo: str | None, *args: str, check: bool = True, timeout: float | None = None) -> str:
        out = await self._git_bytes(repo, *args, check=check, timeout=timeout)
        return out.decode(errors="replace") if out is not None else ""

    async def _git_bytes(
        self, repo: str | None, *args: str, check: bool = True, timeout: float | None = None
    ) -> bytes | None:
        cmd = ["git"] + (["-C", repo] if repo else []) + list(args)
        limit = timeout or self._timeout
        try:
            # spawned from a worker thread by subprocess (vfork): uvloop's own spawn forks the whole
            # server, 3.3-4.3 ms of its CPU and 8-10 ms per git process at 150 MB; this, 0.4 ms
            done = await asyncio.get_running_loop().run_in_executor(self._threads, functools.partial(
                subprocess.run, cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=limit,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},  # a missing credential fails, never prompts
            ))  # fmt: skip
        except subprocess.TimeoutExpired:  # run() killed and reaped it
            raise GitError(f"git {args[0]} timed out after {limit:.0f} s") from None
        if done.returncode != 0:
            if not check:
                return None
            message = f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}"
            raise GitError(redact(message))
        return done.stdout


def _commit_fields(out: str) -> dict[str, str]:
    """``_COMMIT_FORMAT``'s output as ``{parents, message, author_name, author_email, timestamp}``."""
    parts = out.split("\0", 4)
    if len(parts) != 5:
        return {}
    parents, name, email, timestamp, message = parts
    return {"parents": parents.strip(), "message": message.rstrip("\n") + "\n" if message.strip() else "",
            "author_name": name, "author_email": email, "timestamp": timestamp}


async def _value(value: T) -> T:
    return value


def _copy(value: T) -> T:
    """A remembered list or dict handed out as a copy: callers may change theirs."""
    if isinstance(value, list):
        return list(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return dict(value)  # type: ignore[return-value]
    return value
