"""``PipelineContext``: what ``load`` and ``build`` know about the pipeline being created.

It is plain data (and an optional ``compare_to`` function the caller provides): where the
pipeline comes from (``source``: push, web, api, schedule, trigger, ...), which ref and commit,
the pipeline variables, which files changed and which exist. From it come the pre-pipeline
predefined variables (spec section 13) that ``include``, ``workflow:rules`` and ``rules`` see.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

ZERO_SHA = "0" * 40
SOURCES = frozenset(
    "push web schedule api trigger pipeline parent_pipeline merge_request_event "
    "external_pull_request_event chat webide external ondemand_dast_scan "
    "ondemand_dast_validation security_orchestration_policy".split()
)
SLUG_MAX_LENGTH = 63
_NOT_SLUG = re.compile(r"[^a-z0-9]")


def slugify(value: str) -> str:
    """GitLab's slug (``CI_COMMIT_REF_SLUG``, ``CI_JOB_NAME_SLUG``): lowercased, every character
    outside ``[0-9a-z]`` replaced by ``-``, cut to 63 characters, no leading or trailing ``-``."""
    return _NOT_SLUG.sub("-", value.lower())[:SLUG_MAX_LENGTH].strip("-")


@dataclass(frozen=True)
class PipelineContext:
    """The pipeline being created.

    ``changed_files`` None means unknown (``rules:changes`` is then true, as GitLab does for
    pipelines without a push event); ``repository_files`` None means unknown (``rules:exists``
    is then false). ``compare_to(ref)`` lists the files changed between ``ref`` and ``sha``
    (None when the ref does not exist), for ``rules:changes:compare_to``.
    """

    source: str = "push"
    ref: str = "main"
    sha: str = ZERO_SHA
    before_sha: str = ZERO_SHA
    tag: bool = False
    default_branch: str = "main"
    protected: bool = False
    variables: Mapping[str, str] = field(default_factory=dict)  # pipeline variables
    project_variables: Mapping[str, str] = field(default_factory=dict)
    changed_files: Sequence[str] | None = None
    repository_files: Sequence[str] | None = None
    compare_to: Callable[[str], Sequence[str] | None] | None = None
    project_path: str = "conveyor/project"
    server_url: str = "http://localhost"
    config_path: str = ".gitlab-ci.yml"
    commit_message: str = ""
    pipeline_name: str | None = None

    @property
    def branch(self) -> str | None:
        return None if self.tag else self.ref

    def predefined(self) -> dict[str, str]:
        """The pre-pipeline predefined variables (usable in include, workflow and rules)."""
        namespace, _, name = self.project_path.rpartition("/")
        project_url = f"{self.server_url.rstrip('/')}/{self.project_path}"
        values = {
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": self.source,
            "CI_PIPELINE_TRIGGERED": "true" if self.source in ("trigger", "pipeline") else "false",
            "CI_COMMIT_SHA": self.sha,
            "CI_COMMIT_SHORT_SHA": self.sha[:8],
            "CI_COMMIT_BEFORE_SHA": self.before_sha,
            "CI_COMMIT_REF_NAME": self.ref,
            "CI_COMMIT_REF_SLUG": slugify(self.ref),
            "CI_COMMIT_REF_PROTECTED": "true" if self.protected else "false",
            "CI_COMMIT_MESSAGE": self.commit_message,
            "CI_COMMIT_TITLE": self.commit_message.split("\n", 1)[0],
            "CI_DEFAULT_BRANCH": self.default_branch,
            "CI_CONFIG_PATH": self.config_path,
            "CI_PROJECT_PATH": self.project_path,
            "CI_PROJECT_PATH_SLUG": slugify(self.project_path),
            "CI_PROJECT_NAME": name or self.project_path,
            "CI_PROJECT_NAMESPACE": namespace,
            "CI_PROJECT_ROOT_NAMESPACE": namespace.split("/", 1)[0],
            "CI_PROJECT_URL": project_url,
            "CI_SERVER_URL": self.server_url.rstrip("/"),
            "CI_API_V4_URL": f"{self.server_url.rstrip('/')}/api/v4",
        }
        if self.tag:
            values["CI_COMMIT_TAG"] = self.ref
        else:
            values["CI_COMMIT_BRANCH"] = self.ref
        if self.pipeline_name:
            values["CI_PIPELINE_NAME"] = self.pipeline_name
        return values

    def include_variables(self) -> dict[str, str]:
        """What ``include`` and ``include:rules`` may use: predefined, project and pipeline
        variables (never the YAML's own ``variables:``)."""
        return {**self.predefined(), **self.project_variables, **self.variables}
