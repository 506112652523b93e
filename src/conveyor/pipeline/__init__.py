"""Turn a validated ``PipelineConfig`` into the jobs of a pipeline, and decide how it advances.

Owns ``build`` (``workflow:rules``, job ``rules``/``only``/``except`` for the pipeline's
context, variable precedence, stage indexes, ``needs`` validation -> ``JobSpec`` list),
``progress`` (which created jobs start, become playable or are skipped, and the pipeline's
composite status, with GitLab's semantics), ``reset_after_play``, what a failure means
(``should_retry``, ``allowed_to_fail``), and the predefined variables that follow from a job's
spec. Pure: no I/O, settings, sockets or database; the server stores the
results. It may import only the standard library, PyYAML, pydantic, ``conveyor.protocol`` and
``conveyor.ciconfig``.
"""

from conveyor.pipeline.builder import NOTHING_TO_RUN, build, validate
from conveyor.pipeline.errors import InvalidJobStates
from conveyor.pipeline.failures import RETRY_WHEN, allowed_to_fail, should_retry
from conveyor.pipeline.progress import JobState, Progress, progress, reset_after_play
from conveyor.pipeline.status import composite
from conveyor.pipeline.selection import WORKFLOW_FILTERED
from conveyor.pipeline.variables import expanded_variables, predefined_variables, slugify

__all__ = [
    "NOTHING_TO_RUN",
    "RETRY_WHEN",
    "WORKFLOW_FILTERED",
    "InvalidJobStates",
    "JobState",
    "Progress",
    "allowed_to_fail",
    "build",
    "composite",
    "expanded_variables",
    "predefined_variables",
    "progress",
    "reset_after_play",
    "should_retry",
    "slugify",
    "validate",
]
