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
_URL = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>\[[^\]]*\]|[^/:]*)(?::(?P<port>\d+))?(?P<path>/.*)?$", re.I)
# The GitLab version whose CI and API Conveyor follows (CI_SERVER_VERSION, GET /version):
# clients pick features by it.
GITLAB_VERSION = "17.11.0"
SERVER_NAME = "GitLab"  # CI_SERVER_NAME: what clients written for GitLab test for
TEMPLATE_REGISTRY_HOST = "registry.gitlab.com"  # CI_TEMPLATE_REGISTRY_HOST, used by GitLab's templates
DEFAULT_PORTS = {"http": 80, "https": 443}


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
    project_id: int | None = None
    commit_author: str | None = None  # "Name <email>"
    commit_timestamp: str | None = None  # ISO 8601 with offset
    tag_message: str | None = None
    pipeline_created_at: str | None = None  # ISO 8601 UTC
    server_revision: str = ""
    # GITLAB_USER_* of who made the pipeline: pipeline level, so job rules see them, include
    # and workflow do not (GitLab's config variables hold no user)
    user_variables: Mapping[str, str] = field(default_factory=dict)
    # cache:key:files: (kind, paths) -> the files' blob ids ("files") or the ids of the last
    # commits that changed them ("files_commits") at ``sha``, None for a missing file.
    file_hashes: Callable[[str, Sequence[str]], list[str | None]] | None = None
    # rules:exists:project: (project, ref or None for its default branch) -> its files, or
    # None when there is no such project or ref
    project_files: Callable[[str, str | None], Sequence[str] | None] | None = None

    @property
    def branch(self) -> str | None:
        return None if self.tag else self.ref

    def predefined(self) -> dict[str, str]:
        """The pre-pipeline predefined variables (usable in include, workflow and rules), with
        GitLab's values (spec section 13)."""
        namespace, _, name = self.project_path.rpartition("/")
        server = server_variables(self.server_url)
        project_url = f"{server['CI_SERVER_URL']}/{self.project_path}"
        title, _, description = self.commit_message.partition("\n")
        values = {
            "CI": "true",
            "GITLAB_CI": "true",
            **server,
            "CI_SERVER_REVISION": self.server_revision,
            "CI_TEMPLATE_REGISTRY_HOST": TEMPLATE_REGISTRY_HOST,
            "CI_PIPELINE_SOURCE": self.source,
            "CI_COMMIT_SHA": self.sha,
            "CI_COMMIT_SHORT_SHA": self.sha[:8],
            "CI_COMMIT_BEFORE_SHA": self.before_sha,
            "CI_COMMIT_REF_NAME": self.ref,
            "CI_COMMIT_REF_SLUG": slugify(self.ref),
            "CI_COMMIT_REF_PROTECTED": "true" if self.protected else "false",
            "CI_COMMIT_MESSAGE": self.commit_message,
            "CI_COMMIT_TITLE": title,
            "CI_COMMIT_DESCRIPTION": description.rstrip("\n"),
            "CI_DEFAULT_BRANCH": self.default_branch,
            "CI_CONFIG_PATH": self.config_path,
            "CI_PROJECT_PATH": self.project_path,
            "CI_PROJECT_PATH_SLUG": slugify(self.project_path),
            "CI_PROJECT_NAME": name or self.project_path,
            "CI_PROJECT_TITLE": name or self.project_path,
            "CI_PROJECT_NAMESPACE": namespace,
            "CI_PROJECT_ROOT_NAMESPACE": namespace.split("/", 1)[0],
            "CI_PROJECT_URL": project_url,
            "CI_PROJECT_VISIBILITY": "private",
        }
        if self.source in ("trigger", "pipeline"):
            values["CI_PIPELINE_TRIGGERED"] = "true"
        if self.project_id is not None:
            values["CI_PROJECT_ID"] = str(self.project_id)
        if self.commit_author is not None:
            values["CI_COMMIT_AUTHOR"] = self.commit_author
        if self.commit_timestamp is not None:
            values["CI_COMMIT_TIMESTAMP"] = self.commit_timestamp
        if self.pipeline_created_at is not None:
            values["CI_PIPELINE_CREATED_AT"] = self.pipeline_created_at
        if self.tag:
            values["CI_COMMIT_TAG"] = self.ref
            values["CI_COMMIT_TAG_MESSAGE"] = self.tag_message or ""
        elif self.source not in ("merge_request_event", "external_pull_request_event"):
            values["CI_COMMIT_BRANCH"] = self.ref
        if self.pipeline_name:
            values["CI_PIPELINE_NAME"] = self.pipeline_name
        return values

    def include_variables(self) -> dict[str, str]:
        """What ``include`` and ``include:rules`` may use: predefined, project and pipeline
        variables (never the YAML's own ``variables:``)."""
        return {**self.predefined(), **self.project_variables, **self.variables}


def server_variables(server_url: str) -> dict[str, str]:
    """``CI_SERVER_*`` and ``CI_API_*`` from the server's external URL (``CI_SERVER_FQDN`` is
    the host plus ``:port`` when the port is not the scheme's default)."""
    match = _URL.match(server_url.rstrip("/"))
    parts = match.groupdict() if match else {}
    protocol = (parts.get("scheme") or "http").lower()
    host = (parts.get("host") or "localhost").lower()
    port = int(parts["port"]) if parts.get("port") else DEFAULT_PORTS.get(protocol, 80)
    fqdn = host if port == DEFAULT_PORTS.get(protocol) else f"{host}:{port}"
    url = f"{protocol}://{fqdn}{parts.get('path') or ''}"
    major, minor, patch = GITLAB_VERSION.split(".")
    return {
        "CI_SERVER_URL": url,
        "CI_SERVER_HOST": host,
        "CI_SERVER_PORT": str(port),
        "CI_SERVER_PROTOCOL": protocol,
        "CI_SERVER_FQDN": fqdn,
        "CI_SERVER_NAME": SERVER_NAME,
        "CI_SERVER_VERSION": GITLAB_VERSION,
        "CI_SERVER_VERSION_MAJOR": major,
        "CI_SERVER_VERSION_MINOR": minor,
        "CI_SERVER_VERSION_PATCH": patch,
        "CI_API_V4_URL": f"{url}/api/v4",
        "CI_API_GRAPHQL_URL": f"{url}/api/graphql",
    }
