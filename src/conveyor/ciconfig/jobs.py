"""One job's mapping -> ``JobConfig``, with GitLab's validation texts.

Keys fall in four groups: supported (turned into ``JobConfig`` fields), accepted and ignored
(they do not change which jobs run or what they run), known but not supported yet (refused with
a clear message rather than silently run differently from GitLab), and unknown (GitLab's
"contains unknown keys" error). ``default:`` values are filled in here, as ``inherit:`` allows.
"""

from __future__ import annotations

from typing import Any

from conveyor.ciconfig import duration, keywords, scheduling, selection, trigger, values
from conveyor.ciconfig.errors import IssueCollector
from conveyor.ciconfig.model import DEFAULT_JOB_STAGE, DefaultConfig, JobConfig
from conveyor.ciconfig.need import parse_needs
from conveyor.ciconfig.yamlsource import YamlMap
from conveyor.protocol.enums import When

MAX_JOB_NAME_LENGTH = 255
MAX_TIMEOUT_SECONDS = 30 * 86400  # GitLab: Project::MAX_BUILD_TIMEOUT, one month
SUPPORTED_KEYS = frozenset(
    "stage script before_script after_script variables needs when allow_failure timeout tags "
    "start_in extends rules only except inherit parallel".split()
) | frozenset(keywords.PARSERS)
IGNORED_KEYS = frozenset(
    "hooks id_tokens secrets release pages publish manual_confirmation identity "
    "dast_configuration type".split()
)
UNSUPPORTED_KEYS = frozenset({"run"})
KNOWN_KEYS = SUPPORTED_KEYS | IGNORED_KEYS | UNSUPPORTED_KEYS  # `trigger` makes a bridge, not a job
JOB_WHEN = ("on_success", "on_failure", "always", "manual", "delayed")


class _Job:
    """Where issues of one job go: its name, its mapping (for key lines) and the collector."""

    def __init__(self, name: str, config: YamlMap, line: int, issues: IssueCollector) -> None:
        self.name, self.config, self.line, self.issues = name, config, line, issues
        self.location = f"jobs:{name}"

    def key_line(self, key: str) -> int:
        return self.config.lines.get(key, self.line)

    def add_at(self, message: str, key: str) -> None:
        self.add(message, key)

    def add(self, message: str, key: str | None = None, line: int | None = None) -> None:
        at = line if line is not None else self.key_line(key) if key else self.line
        file = self.config.file_of(key) if key else self.config.file
        self.issues.add(message, at, job=self.name, key=key, file=file or None)


def parse_job(
    name: str,
    config: YamlMap,
    line: int,
    stages: list[str],
    issues: IssueCollector,
    default: DefaultConfig | None = None,
) -> JobConfig | None:
    """Validate one visible job; returns None when it has issues (all recorded in ``issues``).

    Args:
        name: the job's key; ``line`` is where that key is.
        config: the job's mapping, with key lines (``extends`` and ``!reference`` resolved).
        stages: the pipeline's stages, ``.pre`` and ``.post`` included, to check ``stage:``.
        issues: where every problem goes.
        default: ``default:``, copied into the job where it has no value of its own.
    """
    job = _Job(name, config, line, issues)
    before = len(issues.issues)
    if len(name) > MAX_JOB_NAME_LENGTH:
        job.add(f"{job.location} name is too long (maximum is {MAX_JOB_NAME_LENGTH} characters)")
    for key in config:
        if key in UNSUPPORTED_KEYS:
            job.add(f"{job.location}:{key} keyword is not supported yet", key)
    if not {"script", "run", "trigger", "needs"} & set(config):
        # GitLab words this one with a space, not a colon: "jobs build config should ...".
        job.add(f"jobs {name} config should implement the script:, run:, or trigger: keyword")
        return None
    if "script" not in config:
        if "trigger" in config or "needs" in config:
            return parse_bridge(job, stages)
        return None  # run:, refused above
    if unknown := values.unknown_keys(config, KNOWN_KEYS):
        job.add(f"{job.location} {unknown}", next(str(k) for k in config if k not in KNOWN_KEYS))

    script = _script(job)
    before_script = _commands(job, "before_script")
    after_script = _commands(job, "after_script")
    stage = _stage(job, stages)
    variables = values.variables(
        config.get("variables"), f"{job.location}:variables", job.key_line("variables"),
        issues, allowed_data=values.JOB_VARIABLE_DATA, job=name,
    )
    when = _when(job)
    allow_failure, exit_codes = _allow_failure(job, when)
    start_in = _start_in(job)
    extra, _ = keywords.parse(config, job.location, job.add_at, tuple(keywords.PARSERS))
    timeout = _timeout(job)
    needs = None
    if config.get("needs") is not None:
        needs = parse_needs(
            config["needs"], f"{job.location}:needs", job.key_line("needs"),
            lambda message, at: job.add(message, "needs", at),
        )
    tags = None
    if config.get("tags") is not None:
        tags = values.tags(config["tags"], f"{job.location}:tags", job.key_line("tags"), issues, job=name, key="tags")
    if extra.get("dependencies") and needs:
        missing = [d for d in extra["dependencies"] if d not in {n.job for n in needs}]
        if missing:
            job.add(
                f"{job.location} dependencies the {', '.join(missing)} should be part of needs",
                "dependencies",
            )
    conditions = selection.parse(job.config, job.location, job.add_at, job.add)
    inherited = selection.inherited(job.config, job.location, job.add_at, default or DefaultConfig())
    if len(issues.issues) > before or script is None or when is None or conditions is None:
        return None
    scripts = {"before_script": before_script, "after_script": after_script, "tags": tags}
    own = {key: value for key, value in {**extra, **scripts}.items() if value is not None}
    chosen = {**inherited.values, **own}
    return JobConfig(
        before_script=chosen.pop("before_script", None),
        after_script=chosen.pop("after_script", None),
        **chosen,
        start_in=start_in,
        allow_failure_exit_codes=exit_codes,
        allow_failure_set=config.get("allow_failure") is not None,
        name=name,
        file=config.file or None,
        stage=stage or DEFAULT_JOB_STAGE,
        script=script,
        variables=variables,
        raw_variables=values.raw_variable_names(config.get("variables")),
        inherit_variables=inherited.variables,
        needs=needs,
        when=when,
        allow_failure=allow_failure,
        timeout=timeout,
        line=line,
        rules=conditions.rules,
        only=conditions.only,
        except_=conditions.except_,
        parallel=conditions.parallel,
    )


def parse_bridge(job: _Job, stages: list[str]) -> JobConfig | None:
    """A bridge (``trigger:``, GitLab's ``Entry::Bridge``): it runs no script but creates a
    downstream pipeline. Only the bridge keys are allowed; ``default:`` does not apply."""
    config, issues = job.config, job.issues
    before = len(issues.issues)
    if unknown := values.unknown_keys(config, trigger.BRIDGE_KEYS):
        job.add(f"{job.location} {unknown}", next(str(k) for k in config if k not in trigger.BRIDGE_KEYS))
    if "trigger" not in config:
        job.add(f"{job.location} config should contain either a trigger or a needs:pipeline")
        return None
    parsed = trigger.parse(config["trigger"], job.location, lambda message: job.add(message, "trigger"))
    stage = _stage(job, stages)
    variables = values.variables(
        config.get("variables"), f"{job.location}:variables", job.key_line("variables"),
        issues, allowed_data=values.JOB_VARIABLE_DATA, job=job.name,
    )
    when_value = config.get("when", "on_success")
    if when_value not in trigger.BRIDGE_WHEN:
        job.add(f"{job.location} when should be one of: {', '.join(trigger.BRIDGE_WHEN)}", "when")
    allow_failure = config.get("allow_failure")
    if allow_failure is not None and not isinstance(allow_failure, bool):
        job.add(f"{job.location} allow_failure should be a boolean value", "allow_failure")
    needs = None
    if config.get("needs") is not None:
        needs = parse_needs(config["needs"], f"{job.location}:needs", job.key_line("needs"),
                            lambda message, at: job.add(message, "needs", at))  # fmt: skip
        if needs and any(need.pipeline is not None for need in needs):
            job.add(f"{job.location}:needs config uses invalid types: cross_dependency", "needs")
    extra, _ = keywords.parse(config, job.location, job.add_at, ("resource_group", "environment", "interruptible"))
    conditions = selection.parse(config, job.location, job.add_at, job.add)
    if conditions is not None and conditions.parallel is not None and conditions.parallel.total is not None:
        job.add(f'{job.location}:parallel config cannot use "parallel: <number>".', "parallel")
    inherited = selection.inherited(config, job.location, job.add_at, DefaultConfig())
    if len(issues.issues) > before or parsed is None or conditions is None:
        return None
    when = When(when_value)
    return JobConfig(
        name=job.name, file=config.file or None, stage=stage or DEFAULT_JOB_STAGE, script=[],
        before_script=None, after_script=None, variables=variables,
        raw_variables=values.raw_variable_names(config.get("variables")),
        inherit_variables=inherited.variables, needs=needs, when=when,
        allow_failure=allow_failure if isinstance(allow_failure, bool) else when is When.MANUAL,
        allow_failure_set=allow_failure is not None, timeout=None, line=job.line,
        rules=conditions.rules, only=conditions.only, except_=conditions.except_, parallel=conditions.parallel,
        trigger=parsed, **extra,
    )


def _stage(job: _Job, stages: list[str]) -> str | None:
    stage = job.config.get("stage", DEFAULT_JOB_STAGE)
    if not isinstance(stage, str):
        job.add(f"{job.location}:stage config should be a string", "stage")
        return None
    if stage not in stages:
        job.add(
            f"{job.name} job: chosen stage {stage} does not exist; "
            f"available stages are {', '.join(stages)}",
            "stage",
        )
    return stage


def _script(job: _Job) -> list[str] | None:
    value = job.config.get("script")
    if value is None or value == "" or value == []:
        job.add(f"{job.location} script can't be blank", "script")
        return None
    return _commands(job, "script")


def _commands(job: _Job, key: str) -> list[str] | None:
    value = job.config.get(key)
    if value is None:
        return None
    location = f"{job.location}:{key}"
    return values.commands(value, location, job.key_line(key), job.issues, job=job.name, key=key)


def _when(job: _Job) -> When | None:
    value = job.config.get("when")
    if value is None:
        return When.ON_SUCCESS
    if isinstance(value, str) and value in JOB_WHEN:
        return When(value)
    job.add(f"{job.location} when should be one of: {', '.join(JOB_WHEN)}", "when")
    return None


def _start_in(job: _Job) -> int | None:
    """GitLab: ``start_in`` is required with ``when: delayed`` and must be absent otherwise
    (and with ``rules`` it belongs in the rule)."""
    if job.config.get("when") != "delayed" or "rules" in job.config:
        if job.config.get("start_in") is not None and "rules" not in job.config:
            job.add(f"{job.location} start_in must be blank", "start_in")
        return None
    return scheduling.start_in(
        job.config.get("start_in"), job.location, lambda message: job.add(message, "start_in")
    )


def _allow_failure(job: _Job, when: When | None) -> tuple[bool, list[int]]:
    """``allow_failure`` and its exit codes: ``{exit_codes}`` allows only those codes to fail."""
    value = job.config.get("allow_failure")
    if value is None:
        # GitLab: an optional (non-blocking) manual job by default
        return when is When.MANUAL, []
    if isinstance(value, bool):
        return value, []
    if not isinstance(value, dict):
        job.add(
            f"{job.location} allow_failure should be a hash or a boolean value", "allow_failure"
        )
        return False, []
    extra = [str(key) for key in value if key != "exit_codes"]
    if extra:
        job.add(
            f"{job.location}:allow_failure config contains unknown keys: {', '.join(extra)}",
            "allow_failure",
        )
        return False, []
    codes = value.get("exit_codes")
    codes = codes if isinstance(codes, list) else [codes]
    if not codes or not all(values.is_int(c) for c in codes):
        job.add(
            f"{job.location}:allow_failure exit_codes should be an integer or an array of integers",
            "allow_failure",
        )
        return False, []
    return False, list(codes)


def _timeout(job: _Job) -> int | None:
    value = job.config.get("timeout")
    if value is None:
        return None
    seconds = duration.parse_seconds(value) if values.is_scalar(value) else None
    if not seconds:
        job.add(f"{job.location}:timeout config should be a duration", "timeout")
        return None
    if seconds > MAX_TIMEOUT_SECONDS:
        job.add(f"{job.location}:timeout config should not exceed the limit", "timeout")
        return None
    return seconds
