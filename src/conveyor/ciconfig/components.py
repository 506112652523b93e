"""``include: component:`` addresses and versions (GitLab's ``Components::InstancePath``).

An address is ``<server fqdn>/<project path>/<component name>@<version>`` after variable
expansion. The version is a commit SHA, a tag, a branch, ``~latest`` (the newest published
version) or a partial semantic version (``1``, ``1.2``: the newest published version with that
major[.minor]). Conveyor publishes every semantic-version tag of a project (GitLab: the catalog
releases); pre-releases are never chosen by ``~latest`` or a partial version. The component's
file is ``templates/<name>.yml``, else ``templates/<name>/template.yml``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

LATEST = "~latest"
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_PARTIAL = re.compile(r"^(\d+)(?:\.(\d+))?$")
_NAME = re.compile(r"^[\w-]+$")


@dataclass(frozen=True)
class Address:
    text: str  # the expanded address, as GitLab's errors show it
    project: str
    name: str
    version: str


def parse(text: str, fqdn: str) -> Address | None:
    """The address's parts; None when it is not one this server serves (GitLab: "the component
    path is not supported")."""
    if "@" not in text or not text.startswith(f"{fqdn}/"):
        return None
    path, _, version = text.partition("@")
    project, _, name = path[len(fqdn) + 1 :].rpartition("/")
    if not project or not name or not version or not _NAME.match(name):
        return None
    return Address(text, project, name, version)


def files(name: str) -> tuple[str, str]:
    """Where the component's file may be, in GitLab's order."""
    return f"templates/{name}.yml", f"templates/{name}/template.yml"


def is_partial(version: str) -> bool:
    return _PARTIAL.match(version) is not None


def pick(version: str, tags: Iterable[str]) -> str | None:
    """The tag that ``~latest`` or a partial version means among ``tags``; None for any other
    version (a SHA, tag or branch, resolved as a revision) or when no tag matches."""
    partial = _PARTIAL.match(version)
    if version != LATEST and not partial:
        return None
    best: tuple[tuple[int, int, int], str] | None = None
    for tag in tags:
        match = _SEMVER.match(tag)
        if match is None or match.group(4):  # not semver, or a pre-release
            continue
        numbers = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
        if partial and (numbers[0] != int(partial.group(1)) or (partial.group(2) is not None and numbers[1] != int(partial.group(2)))):
            continue
        if best is None or numbers > best[0]:
            best = (numbers, tag)
    return best[1] if best else None


def error(address: str, problem: str) -> str:
    return f"Component '{address}' - {problem}"


NOT_SUPPORTED = "the component path is not supported"
NOT_FOUND = "content not found"
NO_LATEST = (
    "The ~latest version reference is not supported for non-catalog resources. "
    "Use a tag, branch, or commit SHA instead."
)
NO_PARTIAL = (
    "The partial semantic version reference is not supported for non-catalog resources. "
    "Use a tag, branch, or commit SHA instead."
)
