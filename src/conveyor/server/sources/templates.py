"""``TemplateDirectory``: GitLab's CI templates (``include: template:``) read from a directory.

The directory has the layout of GitLab's ``lib/gitlab/ci/templates`` (``Workflows/
Branch-Pipelines.gitlab-ci.yml``, ``Jobs/Code-Quality.gitlab-ci.yml``...), e.g. a checkout of
that folder at the GitLab version the pipelines were written for. Without one, every template
include fails with ``ciconfig``'s ``NO_TEMPLATE_SOURCE`` text.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.ciconfig import IncludeFailed
from conveyor.ciconfig.resolver import NO_TEMPLATE_SOURCE, template_path

MAX_TEMPLATE_BYTES = 1024 * 1024


class TemplateDirectory:
    def __init__(self, root: Path | str | None) -> None:
        self.root = Path(root).expanduser().resolve() if root else None

    def read(self, name: str) -> str | None:
        """The template's text; None when the directory has no such file."""
        if self.root is None:
            raise IncludeFailed(NO_TEMPLATE_SOURCE.format(name=name))
        relative = template_path(name)
        if relative is None:
            return None
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        if target.stat().st_size > MAX_TEMPLATE_BYTES:
            raise IncludeFailed(f"Template file `{name}` is too big")
        return target.read_text(encoding="utf-8", errors="replace")
