"""``IncludeResolver``: the only way ``ciconfig`` reads files (the I/O seam for ``include``).

Implementations live outside ``ciconfig`` (the server reads git at the pipeline's commit, the CLI
reads the working directory); ``MemoryResolver`` serves unit tests and callers that already hold
every file. Methods are synchronous: the server runs ``load`` in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from conveyor.protocol.errors import ConveyorError


class IncludeFailed(ConveyorError):
    """An include could not be read; the message is shown to the user as is."""


class IncludeResolver(Protocol):
    def local(self, path: str) -> str | None:
        """The text of ``path`` (relative to the repository root) at the pipeline's commit, or
        None when there is no such file."""

    def local_files(self) -> Sequence[str]:
        """Every file path of the repository at the pipeline's commit (for wildcards)."""

    def project(self, project: str, ref: str | None, path: str) -> str | None:
        """The text of ``path`` in another project at ``ref`` (its default branch when None);
        None when that file does not exist. Raises ``IncludeFailed`` for an unknown project
        or ref."""

    def remote(self, url: str) -> str:
        """The body of an HTTPS URL. Raises ``IncludeFailed`` (timeout, size, status)."""

    def template(self, name: str) -> str | None:
        """The text of GitLab's CI template ``name`` (a path under GitLab's
        ``lib/gitlab/ci/templates``, e.g. ``Workflows/Branch-Pipelines.gitlab-ci.yml``) from the
        configured template source, or None when it has no such template. Raises
        ``IncludeFailed`` (``NO_TEMPLATE_SOURCE``) when no source is configured."""

    def artifact(self, job: str, path: str) -> str | None:
        """``path`` inside the artifacts archive of the parent pipeline's latest job ``job``
        (dynamic child pipelines); None when there is no such job with artifacts. Raises
        ``IncludeFailed`` when the file is missing or too big."""

    def project_tags(self, project: str) -> Sequence[str]:
        """The tag names of another project (component versions). Raises ``IncludeFailed``
        for an unknown project."""


NO_TEMPLATE_SOURCE = (
    "Template file `{name}` cannot be included: no template source is configured "
    "(set CONVEYOR_CI_TEMPLATES_DIR to a directory holding GitLab's lib/gitlab/ci/templates)"
)


def template_path(name: str) -> str | None:
    """``name`` as a relative path inside a template directory, or None when it would leave it."""
    parts = name.split("/")
    if not name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return None
    return name


class MemoryResolver:
    """Files held in memory: ``files`` of this repository, ``projects[(project, ref)]`` (ref
    None for the default branch), ``remotes[url]`` and ``templates[name]`` (None: no template
    source)."""

    def __init__(
        self,
        files: Mapping[str, str] | None = None,
        projects: Mapping[tuple[str, str | None], Mapping[str, str]] | None = None,
        remotes: Mapping[str, str] | None = None,
        templates: Mapping[str, str] | None = None,
        artifacts: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.artifacts = dict(artifacts or {})
        self.templates = None if templates is None else dict(templates)
        self.files = dict(files or {})
        self.projects = {key: dict(value) for key, value in (projects or {}).items()}
        self.remotes = dict(remotes or {})

    def local(self, path: str) -> str | None:
        return self.files.get(path)

    def local_files(self) -> Sequence[str]:
        return sorted(self.files)

    def project(self, project: str, ref: str | None, path: str) -> str | None:
        if not any(name == project for name, _ in self.projects):
            raise IncludeFailed(
                f"Project `{project}` not found or access denied! Make sure any includes in the "
                "pipeline configuration are correctly defined."
            )
        files = self.projects.get((project, ref))
        if files is None:
            raise IncludeFailed(f"Project `{project}` reference `{ref}` does not exist!")
        return files.get(path)

    def remote(self, url: str) -> str:
        if url not in self.remotes:
            raise IncludeFailed(
                f"Remote file `{url}` could not be fetched because of HTTP code `404` error!"
            )
        return self.remotes[url]

    def template(self, name: str) -> str | None:
        if self.templates is None:
            raise IncludeFailed(NO_TEMPLATE_SOURCE.format(name=name))
        return self.templates.get(name)

    def artifact(self, job: str, path: str) -> str | None:
        if not any(name == job for name, _ in self.artifacts):
            return None
        if (job, path) not in self.artifacts:
            raise IncludeFailed(f"File `{path}` is empty!")
        return self.artifacts[(job, path)]

    def project_tags(self, project: str) -> Sequence[str]:
        if not any(name == project for name, _ in self.projects):
            raise IncludeFailed(f"Project `{project}` not found or access denied!")
        return sorted(ref for name, ref in self.projects if name == project and ref is not None)
