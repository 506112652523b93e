"""``conveyor lint`` and ``conveyor expand``: check or expand a ``.gitlab-ci.yml`` locally.

Local includes are read from the file's directory (the repository root); remote includes are
fetched; project includes need a server. The pipeline context comes from the options: the ref
(a branch, or a tag with ``--tag``), the pipeline source, variables, and the changed files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor import ciconfig, pipeline
from conveyor.protocol.jobspec import JobSpec
from conveyor.server.sources.remote import RemoteFetcher
from conveyor.server.sources.templates import TemplateDirectory

MAX_LISTED_FILES = 100_000
SKIPPED_DIRECTORIES = frozenset({".git", ".venv", "node_modules", "__pycache__"})


class FilesystemResolver:
    """``ciconfig.IncludeResolver`` over a directory: the CLI's view of the repository."""

    def __init__(
        self, root: Path, remote: RemoteFetcher | None = None, templates: Path | None = None, project_path: str | None = None,
    ) -> None:
        self.root = root.resolve()
        self.project_path = project_path or local_project_path(self.root)
        self._templates = TemplateDirectory(templates)
        self._remote = remote or RemoteFetcher(allow_local=True)
        self._files: list[str] | None = None

    def local(self, path: str) -> str | None:
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target.read_text(encoding="utf-8", errors="replace")

    def local_files(self) -> list[str]:
        if self._files is None:
            found: list[str] = []
            for directory, subdirectories, files in os.walk(self.root):
                subdirectories[:] = sorted(d for d in subdirectories if d not in SKIPPED_DIRECTORIES)
                base = Path(directory).relative_to(self.root)
                found += [(base / name).as_posix() for name in sorted(files)]
                if len(found) > MAX_LISTED_FILES:
                    break
            self._files = found
        return self._files

    def project(self, project: str, ref: str | None, path: str) -> str | None:
        if project == self.project_path:  # this repository (its own components): the working tree
            return self.local(path)
        raise ciconfig.IncludeFailed(
            f"Project `{project}` includes need a Conveyor server: `conveyor lint` and "
            "`conveyor expand` read local files only"
        )

    def remote(self, url: str) -> str:
        return self._remote.fetch(url)

    def template(self, name: str) -> str | None:
        return self._templates.read(name)

    def artifact(self, job: str, path: str) -> str | None:
        return None  # no parent pipeline here

    def project_tags(self, project: str) -> list[str]:
        if project == self.project_path:
            return []
        return self.project(project, None, "")  # type: ignore[return-value]  # raises: needs a server


def local_project_path(root: Path) -> str:
    """The project path the CLI gives a working directory (CI_PROJECT_PATH)."""
    return f"local/{root.name or 'project'}"


@dataclass(frozen=True)
class Options:
    ref: str = "main"
    tag: bool = False
    source: str = "push"
    default_branch: str = "main"
    variables: tuple[str, ...] = ()  # KEY=VALUE
    changed: tuple[str, ...] | None = None
    templates: Path | None = None  # GitLab's CI templates (include: template:)


def context_for(path: Path, options: Options, resolver: FilesystemResolver) -> ciconfig.PipelineContext:
    variables = {}
    for item in options.variables:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ValueError(f"--variable takes KEY=VALUE, not {item!r}")
        variables[key] = value
    return ciconfig.PipelineContext(
        source=options.source,
        ref=options.ref,
        tag=options.tag,
        default_branch=options.default_branch,
        variables=variables,
        changed_files=options.changed,
        repository_files=resolver.local_files(),
        project_path=resolver.project_path,
        config_path=path.name,
    )


def load(path: Path, options: Options) -> tuple[ciconfig.PipelineConfig, list[JobSpec]]:
    """Load and build the pipeline of ``path``; raises ``ciconfig.ConfigError``."""
    resolver = FilesystemResolver(path.resolve().parent, templates=options.templates)
    context = context_for(path, options, resolver)
    text = path.read_text(encoding="utf-8", errors="replace")
    config = ciconfig.load(text, filename=path.name, context=context, resolver=resolver)
    return config, pipeline.build(config)


def check(path: Path, options: Options) -> ciconfig.PipelineConfig:
    """Load and validate ``path`` as GitLab's lint does without a simulation: includes (their
    ``rules`` for the options' context), keywords, ``needs``; which jobs run is not evaluated.
    Raises ``ciconfig.ConfigError``."""
    resolver = FilesystemResolver(path.resolve().parent, templates=options.templates)
    context = context_for(path, options, resolver)
    text = path.read_text(encoding="utf-8", errors="replace")
    config = ciconfig.load(text, filename=path.name, context=context, resolver=resolver)
    pipeline.validate(config)
    return config


def lint_lines(error: ciconfig.ConfigError) -> list[str]:
    """``file:line: message`` per issue (``file: message`` without a line)."""
    return [str(issue) for issue in error.issues]


def expanded(config: ciconfig.PipelineConfig, specs: Sequence[JobSpec]) -> list[dict[str, Any]]:
    """The jobs as ``conveyor expand`` prints them."""
    return [
        {
            "name": spec.name,
            "stage": spec.stage,
            "when": str(spec.when),
            "allow_failure": spec.allow_failure,
            "needs": spec.needs,
            "variables": pipeline.expanded_variables(spec, config.context),
            "script": spec.script,
        }
        for spec in specs
    ]


def expanded_json(path: Path, options: Options) -> str:
    config, specs = load(path, options)
    return json.dumps(expanded(config, specs), indent=2, ensure_ascii=False) + "\n"
