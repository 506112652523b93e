"""What the runner tells the coordinator about itself: ``info`` and the feature flags.

Features are advertised truthfully: GitLab hands out jobs needing a feature only to runners that
claim it, and drops them as ``runner_unsupported`` otherwise (runner-api.md section 3.8).
"""

from __future__ import annotations

import platform
import sys

from conveyor import __version__
from conveyor.protocol.models import FeaturesInfo, RunnerInfo

NAME = "conveyor-runner"
VERSION = __version__
REVISION = "unknown"

# Implemented by this runner: the network layer (trace_*, cancel*, two_phase_job_commit), the
# shell executor (variables, shared), the bash generator (masking, raw_variables, refspecs,
# return_exit_code) and the artifact and cache stages.
FEATURES = FeaturesInfo(
    variables=True,
    artifacts=True,
    upload_multiple_artifacts=True,
    artifacts_exclude=True,
    cache=True,
    fallback_cache_keys=True,
    shared=True,
    refspecs=True,
    masking=True,
    raw_variables=True,
    trace_reset=True,
    trace_checksum=True,
    trace_size=True,
    cancelable=True,
    return_exit_code=True,
    cancel_gracefully=True,
    two_phase_job_commit=True,
)

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386"}


def platform_name() -> str:
    return "darwin" if sys.platform == "darwin" else sys.platform.rstrip("0123456789")


def architecture() -> str:
    machine = platform.machine().lower()
    return _GOARCH.get(machine, machine)


# What the docker executor adds (image and sidecar services).
DOCKER_FEATURES = {"image": True, "services": True, "service_variables": True, "service_multiple_aliases": True}


def runner_info(executor: str, *, cancel_gracefully: bool = True) -> RunnerInfo:
    """The ``info`` object sent on verify, job request and job updates."""
    features = FEATURES.model_copy(update={"cancel_gracefully": cancel_gracefully})
    if executor == "docker":
        features = features.model_copy(update=DOCKER_FEATURES)
    return RunnerInfo(
        name=NAME,
        version=VERSION,
        revision=REVISION,
        platform=platform_name(),
        architecture=architecture(),
        executor=executor,
        shell="bash",
        features=features,
    )


def user_agent() -> str:
    python = platform.python_version()
    return f"{NAME} {VERSION} ({REVISION}; python {python}; {platform_name()}/{architecture()})"
