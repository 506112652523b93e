"""``load``: the text of a ``.gitlab-ci.yml`` -> ``PipelineConfig``, or one ``ConfigError`` with
every problem found.

Processing order follows GitLab's (spec section 0) for the keywords supported so far: YAML load
(anchors, aliases, merge keys) -> global keywords -> edge stages -> jobs (with stage existence).
"""

from __future__ import annotations

from typing import Any

from conveyor.ciconfig import jobs as job_entries
from conveyor.ciconfig import keywords, values
from conveyor.ciconfig.errors import ConfigError, ConfigIssue, IssueCollector
from conveyor.ciconfig.model import (
    DEFAULT_STAGES,
    EDGE_STAGES,
    POST_STAGE,
    PRE_STAGE,
    DefaultConfig,
    JobConfig,
    PipelineConfig,
)
from conveyor.ciconfig.yamlsource import YamlMap, parse

NOT_SUPPORTED_YET = frozenset({"include", "workflow"})
KEYWORD_GLOBALS = ("image", "services", "cache")  # deprecated globals equivalent to default:
SCRIPT_GLOBALS = ("before_script", "after_script")
GLOBAL_KEYWORDS = frozenset(
    {"default", "stages", "variables", "spec"}
    | NOT_SUPPORTED_YET
    | set(KEYWORD_GLOBALS)
    | set(SCRIPT_GLOBALS)
)
DEFAULT_KEYS = frozenset(
    "after_script artifacts before_script cache hooks id_tokens identity image interruptible "
    "retry services tags timeout".split()
)


def load(text: str, *, filename: str = ".gitlab-ci.yml") -> PipelineConfig:
    """Parse and validate one CI file.

    Args:
        text: the file's content; nothing is read from disk or network.
        filename: used only in error locations.

    Raises:
        ConfigError: with one ``ConfigIssue`` per problem, each with its line when known.
    """
    document = parse(text, filename)
    body = document.body
    if not isinstance(body, YamlMap):
        kind = "an empty document" if body is None else f"a {type(body).__name__}"
        message = f"Invalid configuration format: the top level must be a mapping, not {kind}"
        raise ConfigError([ConfigIssue(message, filename, None)])
    issues = IssueCollector(filename)
    if document.header is not None:
        _spec(document.header, issues)

    for keyword in sorted(NOT_SUPPORTED_YET & body.keys(), key=body.lines.__getitem__):
        issues.add(f"{keyword} keyword is not supported yet", body.lines[keyword], key=keyword)
    if "spec" in body:
        _spec(body, issues)
    stages = _stages(body, issues)
    variables = values.variables(
        body.get("variables"),
        "variables",
        body.lines.get("variables"),
        issues,
        allowed_data=values.GLOBAL_VARIABLE_DATA,
    )
    default = _default(body, issues)
    jobs = _jobs(body, stages, issues)
    issues.raise_if_any()
    return PipelineConfig(
        stages=stages, variables=variables, jobs=jobs, default=default, filename=filename
    )


def _spec(holder: YamlMap, issues: IssueCollector) -> None:
    spec = holder["spec"]
    if isinstance(spec, dict) and spec.get("inputs"):
        issues.add("spec:inputs keyword is not supported yet", holder.lines["spec"], key="spec")


def _stages(body: YamlMap, issues: IssueCollector) -> list[str]:
    """The stages with ``.pre`` first and ``.post`` last; nested lists are flattened (16.9+)."""
    raw = body.get("stages")
    if raw is None:
        return list(DEFAULT_STAGES)
    listed = values.commands(raw, "stages", body.lines["stages"], IssueCollector(issues.file))
    if listed is None or isinstance(raw, str):
        line = body.lines["stages"]
        issues.add("stages config should be an array of strings", line, key="stages")
        return list(DEFAULT_STAGES)
    middle = [stage for stage in dict.fromkeys(listed) if stage not in EDGE_STAGES]
    return [PRE_STAGE, *middle, POST_STAGE]


def _default(body: YamlMap, issues: IssueCollector) -> DefaultConfig:
    """``default:`` before/after_script, or the deprecated global keywords (never both)."""
    default = body.get("default")
    scripts: dict[str, list[str]] = {}
    if default is not None and not isinstance(default, YamlMap):
        issues.add("default config should be a hash", body.lines["default"], key="default")
        default = None
    if default is not None:
        unknown = [str(key) for key in default if key not in DEFAULT_KEYS]
        if unknown:
            issues.add(
                f"default config contains unknown keys: {', '.join(unknown)}",
                default.lines[unknown[0]],
                key="default",
            )
    for key in SCRIPT_GLOBALS:
        source, location = body, key
        if default is not None and key in default:
            if key in body:
                issues.add(
                    f"{key} is defined in top-level and `default:` entry", body.lines[key], key=key
                )
            source, location = default, f"default:{key}"
        if source.get(key) is not None:
            parsed = values.commands(source[key], location, source.lines[key], issues, key=key)
            scripts[key] = parsed or []
    default_tags: list[str] = []
    if default is not None and default.get("tags") is not None:
        default_tags = values.tags(default["tags"], "default:tags", default.lines["tags"], issues, key="tags") or []
    parsed: dict[str, Any] = {}
    if default is not None:
        parsed, _ = keywords.parse(
            default,
            "default",
            lambda message, key: issues.add(message, default.lines[key], key=key),
            keywords.DEFAULT_INHERITABLE,
        )
    for key in KEYWORD_GLOBALS:
        if body.get(key) is None:
            continue
        if key in parsed:
            issues.add(f"{key} is defined in top-level and `default:` entry", body.lines[key], key=key)
            continue
        found, _ = keywords.parse(
            body, "", lambda message, key: issues.add(message, body.lines[key], key=key), (key,)
        )
        parsed.update(found)
    return DefaultConfig(**scripts, tags=default_tags, **parsed)


def _jobs(body: YamlMap, stages: list[str], issues: IssueCollector) -> dict[str, JobConfig]:
    jobs: dict[str, JobConfig] = {}
    visible = 0
    for key, value in body.items():
        line = body.lines[key]
        if key in GLOBAL_KEYWORDS or (isinstance(key, str) and key.startswith(".")):
            continue
        name = _job_name(key, line, issues)
        if name is None:
            continue
        visible += 1
        if not isinstance(value, YamlMap):
            issues.add(
                f"jobs {name} config should implement the script:, run:, or trigger: keyword",
                line,
                job=name,
            )
            continue
        job = job_entries.parse_job(name, value, line, stages, issues)
        if job is not None:
            jobs[name] = job
    if not visible:
        issues.add("jobs config should contain at least one visible job", None)
    return jobs


def _job_name(key: Any, line: int, issues: IssueCollector) -> str | None:
    """Job names are strings; numbers are accepted as text, ``true``/``false``/``null`` are not."""
    if isinstance(key, str):
        return key
    if isinstance(key, int | float) and not isinstance(key, bool):
        return values.scalar_text(key)
    shown = "null" if key is None else values.scalar_text(key) if values.is_scalar(key) else key
    issues.add(f"jobs:{shown} job name must be a string; quote it", line)
    return None
