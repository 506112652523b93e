"""Variables the runner itself defines for every job (GitLab's "predefined" runner variables).

Runner-defined values come first so job variables may override them; the directory variables and
``CI_JOB_STATUS`` come last because only the runner knows them.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.protocol.models import JobPayload
from conveyor.runner import info
from conveyor.runner.script.variables import JobVariable, resolve
from conveyor.runner.settings import RunnerSettings


def short_token(token: str) -> str:
    """The first 8 characters of the token without its ``glrt-`` prefix, as GitLab shows it."""
    return token.removeprefix("glrt-")[:8]


def job_variables(
    job: JobPayload, settings: RunnerSettings, project_dir: Path, job_status: str, builds_dir: Path | None = None,
    slot: int = 0,
) -> list[JobVariable]:
    """All variables of ``job`` as its scripts see them.

    Args:
        builds_dir: ``CI_BUILDS_DIR`` as the job sees it (default: the runner's).
        slot: ``CI_CONCURRENT_PROJECT_ID``, the job's slot among concurrent jobs of its project.
        job_status: ``CI_JOB_STATUS``: ``running`` for the main stages; ``success``, ``failed``
            or ``canceled`` for after_script.
    """
    runner_defined = [
        JobVariable("CI_SERVER", "yes"),
        JobVariable("CI_SHARED_ENVIRONMENT", "true"),
        JobVariable("CI_RUNNER_VERSION", info.VERSION),
        JobVariable("CI_RUNNER_REVISION", info.REVISION),
        JobVariable("CI_RUNNER_EXECUTABLE_ARCH", f"{info.platform_name()}/{info.architecture()}"),
        JobVariable("CI_RUNNER_SHORT_TOKEN", short_token(settings.token)),
        JobVariable("CI_CONCURRENT_ID", str(slot)),
        JobVariable("CI_CONCURRENT_PROJECT_ID", str(slot)),
    ]
    overrides = [
        JobVariable("CI_BUILDS_DIR", str(builds_dir or settings.builds_dir)),
        JobVariable("CI_PROJECT_DIR", str(project_dir)),
        JobVariable("CI_JOB_STATUS", job_status),
    ]
    return resolve(job, runner_defined, overrides)
