"""Pydantic models of the GitLab runner API bodies (runner-api.md sections 2-4).

Field names and JSON types are GitLab's: a wrong type makes the real gitlab-runner drop a job.
Unknown fields are accepted on input (``extra="allow"``) because GitLab ignores them too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FEATURE_NAMES = (
    "variables image services artifacts cache fallback_cache_keys shared upload_multiple_artifacts "
    "upload_raw_artifacts session terminal refspecs masking proxy raw_variables artifacts_exclude "
    "multi_build_steps trace_reset trace_checksum trace_size vault_secrets cancelable "
    "return_exit_code service_variables service_multiple_aliases image_executor_opts "
    "service_executor_opts cancel_gracefully native_steps_integration two_phase_job_commit job_inputs"
).split()


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class FeaturesInfo(_Lenient):
    """``info.features``: every key is always sent (no omitempty)."""

    variables: bool = False
    image: bool = False
    services: bool = False
    artifacts: bool = False
    cache: bool = False
    fallback_cache_keys: bool = False
    shared: bool = False
    upload_multiple_artifacts: bool = False
    upload_raw_artifacts: bool = False
    session: bool = False
    terminal: bool = False
    refspecs: bool = False
    masking: bool = False
    proxy: bool = False
    raw_variables: bool = False
    artifacts_exclude: bool = False
    multi_build_steps: bool = False
    trace_reset: bool = False
    trace_checksum: bool = False
    trace_size: bool = False
    vault_secrets: bool = False
    cancelable: bool = False
    return_exit_code: bool = False
    service_variables: bool = False
    service_multiple_aliases: bool = False
    image_executor_opts: bool = False
    service_executor_opts: bool = False
    cancel_gracefully: bool = False
    native_steps_integration: bool = False
    two_phase_job_commit: bool = False
    job_inputs: bool = False


class RunnerInfo(_Lenient):
    name: str = "conveyor-runner"
    version: str = ""
    revision: str = ""
    platform: str = ""
    architecture: str = ""
    executor: str = ""
    shell: str = ""
    features: FeaturesInfo = Field(default_factory=FeaturesInfo)
    config: dict[str, Any] = Field(default_factory=lambda: {"gpus": ""})


class VerifyRunnerRequest(_Lenient):
    token: str
    system_id: str | None = None
    info: RunnerInfo | None = None


class RegisterRunnerRequest(_Lenient):
    """Legacy ``POST /runners`` (runner-api.md 2.3); ``token`` is the registration token."""

    token: str
    description: str = ""
    maintenance_note: str | None = None
    tag_list: str | list[str] | None = None  # the runner sends "docker,linux"
    run_untagged: bool = True
    locked: bool = False
    access_level: Literal["not_protected", "ref_protected"] | None = None
    maximum_timeout: int | None = None
    paused: bool | None = None
    active: bool | None = None  # deprecated opposite of ``paused``; never both
    system_id: str | None = None
    info: RunnerInfo | None = None


class RunnerTokenRequest(_Lenient):
    """``DELETE /runners`` and ``POST /runners/reset_authentication_token``."""

    token: str


class UnregisterManagerRequest(_Lenient):
    """``DELETE /runners/managers``: ``system_id`` is always sent (not omitempty)."""

    token: str
    system_id: str


class RegistrationDetails(BaseModel):
    id: int
    token: str
    token_expires_at: str | None = None


class ResetTokenResponse(BaseModel):
    token: str
    token_expires_at: str | None = None


class JobRequest(_Lenient):
    token: str
    system_id: str | None = None
    last_update: str | None = None
    info: RunnerInfo | None = None


class JobOutput(_Lenient):
    checksum: str | None = None
    bytesize: int | None = None


class UpdateJobRequest(_Lenient):
    token: str
    state: str
    failure_reason: str | None = None
    checksum: str | None = None
    output: JobOutput = Field(default_factory=JobOutput)
    exit_code: int | None = None
    info: RunnerInfo | None = None


class JobInfo(_Lenient):
    id: int
    name: str
    stage: str
    project_id: int
    project_name: str
    project_full_path: str = ""
    pipeline_id: int | None = None
    time_in_queue_seconds: float = 0.0
    project_jobs_running_on_instance_runners_count: str = "+Inf"  # a string on the wire
    queue_size: int = 0
    queue_depth: int = 0


class GitInfo(_Lenient):
    repo_url: str
    ref: str
    sha: str
    before_sha: str = ""
    ref_type: str = "branch"
    refspecs: list[str] = Field(default_factory=list)
    depth: int = 0
    repo_object_format: str = "sha1"
    protected: bool | None = False


class RunnerInfoPayload(_Lenient):
    timeout: int = 3600
    runner_session_url: str | None = None


def _not_true(value: object) -> bool:
    return value is not True


class Variable(_Lenient):
    """One job variable. GitLab (``Collection::Item#to_runner_variable``) always sends ``key``,
    ``value``, ``public`` and ``masked``, and ``file``/``raw`` only when they are true."""

    key: str
    value: str
    public: bool = True
    masked: bool = False
    # left out unless true, field by field: a wrap serializer on the model cost ~1 us per variable,
    # 60+ of them in every job payload (issue 24)
    file: bool | None = Field(default=None, exclude_if=_not_true)
    raw: bool | None = Field(default=None, exclude_if=_not_true)


class Step(_Lenient):
    name: str
    script: list[str]
    timeout: int = 3600
    when: str = "on_success"
    allow_failure: bool = False


class JobFeatures(_Lenient):
    trace_sections: bool = True
    failure_reasons: list[str] = Field(default_factory=list)


class JobPayload(_Lenient):
    """The 201 body of ``POST /jobs/request``. ``run`` is never sent (null breaks the runner)."""

    id: int
    token: str
    allow_git_fetch: bool = True
    job_info: JobInfo
    git_info: GitInfo
    runner_info: RunnerInfoPayload = Field(default_factory=RunnerInfoPayload)
    variables: list[Variable] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    image: dict[str, Any] | None = None
    services: list[dict[str, Any]] = Field(default_factory=list)
    artifacts: list[dict[str, Any]] = Field(default_factory=list)
    cache: list[dict[str, Any]] = Field(default_factory=list)
    credentials: list[dict[str, Any]] = Field(default_factory=list)
    dependencies: list[dict[str, Any]] = Field(default_factory=list)
    hooks: list[dict[str, Any]] = Field(default_factory=list)
    features: JobFeatures = Field(default_factory=JobFeatures)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)
