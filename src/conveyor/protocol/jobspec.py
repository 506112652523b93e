"""JobSpec: one job as the pipeline builder produces it and the server stores it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conveyor.protocol.enums import When


class JobSpec(BaseModel):
    """A job of an expanded pipeline, before it runs.

    ``script`` is before_script + script joined (they run in one shell). ``needs`` is None when
    the job has no ``needs:`` (stage ordering applies) and a list (possibly empty) otherwise.

    ``image``, ``services``, ``artifacts`` and ``cache`` are already in the shape of the job
    payload (runner-api.md 3.5: ``image`` ``{"name", "entrypoint", "pull_policy", ...}``,
    ``artifacts[]`` ``{"name", "untracked", "paths", "exclude", "when", "artifact_type",
    "artifact_format", "expire_in"}``, ``cache[]`` ``{"key", "untracked", "policy", "paths",
    "when", "fallback_keys"}``), so the server copies them into the payload unchanged.
    ``dependencies`` None means GitLab's default (every job of earlier stages, or the ``needs``
    with artifacts); a list names the jobs whose artifacts the job downloads.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    stage: str
    stage_idx: int
    script: list[str]
    after_script: list[str] = Field(default_factory=list)
    variables: dict[str, str] = Field(default_factory=dict)
    needs: list[str] | None = None
    when: When = When.ON_SUCCESS
    allow_failure: bool = False
    timeout: int | None = None  # seconds; None means the project's default
    tags: list[str] = Field(default_factory=list)  # a runner takes the job only if it has them all
    image: dict[str, Any] | None = None
    services: list[dict[str, Any]] = Field(default_factory=list)
    artifacts: list[dict[str, Any]] = Field(default_factory=list)
    cache: list[dict[str, Any]] = Field(default_factory=list)
    dependencies: list[str] | None = None
    # needs:pipeline:job ({"pipeline", "job", "artifacts"}) and needs:project ({"project",
    # "job", "ref", "artifacts"}) as written: the server expands their variables at start.
    cross_needs: list[dict[str, Any]] = Field(default_factory=list)
    # A bridge job: {"project", "branch"?} or {"include": [...]}, "strategy", "forward" (and
    # "inputs"). The server creates its downstream pipeline instead of handing it to a runner.
    trigger: dict[str, Any] | None = None
    retry_max: int = 0  # retry:max, 0..2
    retry_when: list[str] = Field(default_factory=lambda: ["always"])
    retry_exit_codes: list[int] = Field(default_factory=list)  # retry:exit_codes, empty = any
    allow_failure_exit_codes: list[int] = Field(default_factory=list)
    start_in: int | None = None  # seconds; set only for when: delayed
    interruptible: bool = False
    resource_group: str | None = None
    environment: dict[str, Any] | None = None
    coverage: str | None = None
    raw_variables: list[str] = Field(default_factory=list)  # expand: false: not to be expanded
    # Pipeline-level predefined variables derived from the config (CI_NODE_INDEX/TOTAL of
    # parallel jobs, CI_ENVIRONMENT_*, CI_PIPELINE_NAME, CI_JOB_NAME_SLUG): they rank below
    # every other variable.
    predefined_variables: dict[str, str] = Field(default_factory=dict)
