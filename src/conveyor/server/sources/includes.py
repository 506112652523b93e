"""``GitIncludeResolver``: the server's ``ciconfig.IncludeResolver``.

Local files are read with git at the pipeline's commit, other projects' files from the projects
Conveyor knows (at ``ref``, else their default branch), remote files with ``RemoteFetcher``.
``ciconfig.load`` runs in a worker thread; the git calls are the async ``GitSources`` methods,
run on the server's event loop from that thread. All includes of one pipeline must resolve
within 30 s (GitLab's limit).
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar, overload

from conveyor.ciconfig import IncludeFailed
from conveyor.server.sources.git import GitError, GitSources
from conveyor.server.sources.remote import RemoteFetcher
from conveyor.server.sources.templates import TemplateDirectory

RESOLVE_TIMEOUT = 30.0
T = TypeVar("T")


class GitIncludeResolver:
    def __init__(
        self,
        sources: GitSources,
        source: str,
        sha: str,
        loop: asyncio.AbstractEventLoop,
        project_source: Callable[[str], Awaitable[str | None]],
        remote: RemoteFetcher | None = None,
        timeout: float = RESOLVE_TIMEOUT,
        templates: TemplateDirectory | None = None,
        artifact: Callable[[str, str], Awaitable[str | None]] | None = None,
    ) -> None:
        self._templates = templates or TemplateDirectory(None)
        self._artifact = artifact
        self._sources, self._source, self._sha, self._loop = sources, source, sha, loop
        self._project_source = project_source
        self._remote = remote or RemoteFetcher()
        self._deadline = time.monotonic() + timeout
        self._files: list[str] | None = None

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        left = self._deadline - time.monotonic()
        if left <= 0:
            coroutine.close()
            raise IncludeFailed("Resolving config took longer than expected")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(left)
        except TimeoutError:
            future.cancel()
            raise IncludeFailed("Resolving config took longer than expected") from None

    def local(self, path: str) -> str | None:
        return self._run(self._sources.read_file(self._source, self._sha, path))

    def local_files(self) -> list[str]:
        if self._files is None:
            self._files = self._run(self._sources.list_files(self._source, self._sha))
        return self._files

    def project(self, project: str, ref: str | None, path: str) -> str | None:
        source = self._run(self._project_source(project))
        if source is None:
            raise IncludeFailed(
                f"Project `{project}` not found or access denied! Make sure any includes in the "
                "pipeline configuration are correctly defined."
            )
        revision = ref or self._run(self._sources.default_branch(source))
        try:
            sha = self._run(self._sources.resolve(source, revision))
        except GitError:
            sha = ""
        if not sha:
            raise IncludeFailed(f"Project `{project}` reference `{revision}` does not exist!")
        return self._run(self._sources.read_file(source, sha, path))

    def remote(self, url: str) -> str:
        if time.monotonic() > self._deadline:
            raise IncludeFailed("Resolving config took longer than expected")
        return self._remote.fetch(url)

    def template(self, name: str) -> str | None:
        return self._templates.read(name)

    def artifact(self, job: str, path: str) -> str | None:
        if self._artifact is None:
            return None
        return self._run(self._artifact(job, path))

    def project_tags(self, project: str) -> list[str]:
        source = self._run(self._project_source(project))
        if source is None:
            raise IncludeFailed(f"Project `{project}` not found or access denied!")
        return self._run(self._sources.tags(source))

    def file_hashes(self, kind: str, paths: list[str]) -> list[str | None]:
        """cache:key:files (blob ids) or files_commits (last commits), wildcards expanded."""
        expanded: list[str] = []
        for path in paths:
            expanded += fnmatch.filter(self.local_files(), path) if "*" in path else [path]
        read = self._sources.blob_id if kind == "files" else self._sources.last_commit
        return [self._run(read(self._source, self._sha, path)) for path in dict.fromkeys(expanded)]

    def changed_files(self, base: str | None) -> list[str]:
        """rules:changes: the files that differ between ``base`` and the pipeline's commit (every
        file when ``base`` is None)."""
        return self._run(self._sources.changed_files(self._source, base, self._sha))

    def changed_since(self, ref: str) -> list[str] | None:
        """rules:changes:compare_to: the files changed since the pipeline's commit left ``ref``."""
        return self._run(self._sources.changed_since(self._source, ref, self._sha))

    def project_files(self, project: str, ref: str | None) -> list[str] | None:
        """rules:exists:project: every file of another project at ``ref`` (its default branch)."""
        source = self._run(self._project_source(project))
        if source is None:
            return None
        revision = ref or self._run(self._sources.default_branch(source))
        try:
            sha = self._run(self._sources.resolve(source, revision))
        except GitError:
            return None
        return self._run(self._sources.list_files(source, sha)) if sha else None


class LazyFiles(Sequence[str]):
    """A list of paths read on first use, from ``ciconfig.load``'s worker thread (never on the
    event loop, which the read runs on): a config without ``rules:changes`` or ``rules:exists``
    spawns no ``git diff`` or ``git ls-tree`` for it."""

    def __init__(self, read: Callable[[], Sequence[str]]) -> None:
        self._read = read
        self._files: Sequence[str] | None = None

    def _loaded(self) -> Sequence[str]:
        if self._files is None:
            self._files = self._read()
        return self._files

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._loaded()[index]

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())
