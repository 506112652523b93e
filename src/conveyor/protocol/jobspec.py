"""JobSpec: one job as the pipeline builder produces it and the server stores it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from conveyor.protocol.enums import When


class JobSpec(BaseModel):
    """A job of an expanded pipeline, before it runs.

    ``script`` is before_script + script joined (they run in one shell). ``needs`` is None when
    the job has no ``needs:`` (stage ordering applies) and a list (possibly empty) otherwise.
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
