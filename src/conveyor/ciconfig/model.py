"""The expanded configuration: what ``ciconfig.load`` returns and ``pipeline.build`` reads.

Plain frozen dataclasses. Lists and dicts inside them are not copied defensively: treat them as
read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.ciconfig.context import PipelineContext
from conveyor.ciconfig.scheduling import Retry
from conveyor.protocol.enums import When

if TYPE_CHECKING:
    from conveyor.ciconfig.parallel import Parallel
    from conveyor.ciconfig.policy import Policy
    from conveyor.ciconfig.rules import Rule

PRE_STAGE = ".pre"
POST_STAGE = ".post"
EDGE_STAGES = (PRE_STAGE, POST_STAGE)
DEFAULT_STAGES = (PRE_STAGE, "build", "test", "deploy", POST_STAGE)
DEFAULT_JOB_STAGE = "test"


@dataclass(frozen=True)
class Need:
    """One entry of a job's ``needs:``. ``line`` locates it for error messages only."""

    job: str
    optional: bool = False
    line: int | None = field(default=None, compare=False)
    artifacts: bool = True
    # needs:parallel:matrix: rows of (variable, values); the need is on those instances only
    matrix: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...] | None = None
    # Cross-pipeline needs (never waited for; artifacts only): ``needs:pipeline:job`` names a
    # pipeline of the same parent-child family, ``needs:project`` a project's latest successful
    # job on ``ref``. Variables in them are expanded when the job starts.
    pipeline: str | None = None
    project: str | None = None
    ref: str | None = None

    @property
    def cross(self) -> bool:
        """Whether this need is on another pipeline (not part of this pipeline's graph)."""
        return self.pipeline is not None or self.project is not None


@dataclass(frozen=True)
class JobConfig:
    """One visible job after validation.

    ``before_script``/``after_script`` are None when the job does not set them: it then inherits
    ``default:`` (a job's own value replaces the default, it never merges). ``needs`` is None
    without ``needs:`` (stage ordering applies) and a list, possibly empty, otherwise.
    ``allow_failure`` already holds GitLab's default: true for ``when: manual``, else false.
    ``timeout`` is in seconds. ``line`` is the 1-based line of the job's key.
    """

    name: str
    stage: str
    script: list[str]
    before_script: list[str] | None
    after_script: list[str] | None
    variables: dict[str, str]
    needs: list[Need] | None
    when: When
    allow_failure: bool
    timeout: int | None
    line: int
    tags: list[str] | None = None  # None: inherit default:tags
    # Payload-shaped (runner-api.md 3.5); None means "not set": default: applies.
    image: dict[str, Any] | None = None
    services: list[dict[str, Any]] | None = None
    artifacts: list[dict[str, Any]] | None = None
    cache: list[dict[str, Any]] | None = None
    retry: Retry | None = None
    interruptible: bool | None = None
    dependencies: list[str] | None = None
    resource_group: str | None = None
    environment: dict[str, Any] | None = None
    coverage: str | None = None  # the regex, without its slashes
    start_in: int | None = None  # seconds; set only for when: delayed
    allow_failure_exit_codes: list[int] = field(default_factory=list)
    raw_variables: frozenset[str] = frozenset()  # variables with expand: false
    # inherit:variables: True (all global variables), False, or the names to inherit
    inherit_variables: bool | frozenset[str] = True
    rules: list[Rule] | None = None
    only: Policy | None = None
    except_: Policy | None = None
    parallel: Parallel | None = None
    # Set on the instances of a parallel job:
    parallel_base: str | None = None
    node_index: int | None = None
    node_total: int = 1
    matrix: dict[str, str] | None = None
    # Whether allow_failure: was written: a rules:when: manual job then keeps it, else a
    # manual job from rules is blocking (allow_failure false).
    allow_failure_set: bool = False
    file: str | None = None  # the file that defines the job, when not the main file
    # A bridge job's trigger (ciconfig/trigger.py); None for a job that runs a script.
    trigger: dict[str, Any] | None = None


@dataclass(frozen=True)
class DefaultConfig:
    """The supported keys of ``default:``, or of the deprecated global keywords of the same name."""

    before_script: list[str] = field(default_factory=list)
    after_script: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    image: dict[str, Any] | None = None
    services: list[dict[str, Any]] | None = None
    artifacts: list[dict[str, Any]] | None = None
    cache: list[dict[str, Any]] | None = None
    retry: Retry | None = None
    interruptible: bool | None = None


@dataclass(frozen=True)
class PipelineConfig:
    """A whole ``.gitlab-ci.yml``: stages with ``.pre`` first and ``.post`` last, global
    variables, ``default:``, and the visible jobs in file order."""

    stages: list[str]
    variables: dict[str, str]
    jobs: dict[str, JobConfig]
    default: DefaultConfig = field(default_factory=DefaultConfig)
    filename: str = ".gitlab-ci.yml"
    raw_variables: frozenset[str] = frozenset()
    workflow: Workflow | None = None
    context: PipelineContext = field(default_factory=PipelineContext)
    # The instances of each parallel job, by the job's original name.
    parallel_groups: dict[str, list[JobConfig]] = field(default_factory=dict)


@dataclass(frozen=True)
class Workflow:
    """``workflow:``: rules deciding whether the pipeline is created, its name, auto-cancel."""

    rules: list[Rule] | None = None
    name: str | None = None
    auto_cancel: dict[str, Any] | None = None
