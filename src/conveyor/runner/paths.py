"""Where a job's files live under ``builds_dir``.

The project directory is ``<builds_dir>/<project slug>``, the slug being the path of
``git_info.repo_url`` without ``.git`` (gitlab-runner ``Build.ProjectSlug``); URLs without a host
(``file://``, plain paths) or with unsafe path parts fall back to ``project-<project_id>``.
File variables and other per-job temporary files go to ``<project dir>.tmp``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from conveyor.protocol.models import JobPayload

_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def project_slug(repo_url: str) -> str | None:
    """``group/project`` from a clone URL, or None when the URL has no usable host and path."""
    try:
        parts = urlsplit(repo_url)
    except ValueError:
        return None
    if not parts.hostname or parts.scheme not in ("http", "https", "ssh", "git"):
        return None
    path = parts.path.strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    segments = path.split("/")
    if not path or not all(_SAFE_PART.match(s) for s in segments):
        return None
    return "/".join(segments)


def project_dir(builds_dir: Path, job: JobPayload) -> Path:
    slug = project_slug(job.git_info.repo_url)
    return builds_dir / (slug or f"project-{job.job_info.project_id}")


def tmp_dir(project: Path) -> Path:
    return project.with_name(project.name + ".tmp")
