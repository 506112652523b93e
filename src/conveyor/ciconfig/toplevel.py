"""The global keywords of a merged configuration: ``stages``, ``variables``, ``default:`` (and
the deprecated globals it replaces), ``workflow:``."""

from __future__ import annotations

from typing import Any

from conveyor.ciconfig import keywords, rules, values
from conveyor.ciconfig.errors import IssueCollector
from conveyor.ciconfig.model import DEFAULT_STAGES, EDGE_STAGES, POST_STAGE, PRE_STAGE, DefaultConfig, Workflow
from conveyor.ciconfig.yamlsource import YamlMap

KEYWORD_GLOBALS = ("image", "services", "cache")  # deprecated globals equivalent to default:
SCRIPT_GLOBALS = ("before_script", "after_script")
GLOBAL_KEYWORDS = frozenset(
    {"default", "stages", "variables", "spec", "include", "workflow"}
    | set(KEYWORD_GLOBALS)
    | set(SCRIPT_GLOBALS)
)
DEFAULT_KEYS = frozenset(
    "after_script artifacts before_script cache hooks id_tokens identity image interruptible "
    "retry services tags timeout".split()
)
WORKFLOW_KEYS = frozenset({"rules", "name", "auto_cancel"})
AUTO_CANCEL_ON_NEW_COMMIT = ("conservative", "interruptible", "none")
AUTO_CANCEL_ON_JOB_FAILURE = ("none", "all")
MAX_STAGE_LENGTH = 255
MAX_PIPELINE_NAME = 255


def _add(issues: IssueCollector, holder: YamlMap, key: Any, message: str, line: int | None = None) -> None:
    issues.add(message, line or holder.lines.get(key), key=str(key), file=holder.file_of(key) or None)


def stages(body: YamlMap, issues: IssueCollector) -> list[str]:
    """The stages with ``.pre`` first and ``.post`` last; nested lists are flattened (16.9+)."""
    raw = body.get("stages")
    if raw is None:
        return list(DEFAULT_STAGES)
    listed = values.commands(raw, "stages", body.lines["stages"], IssueCollector(issues.file))
    if listed is None or isinstance(raw, str):
        _add(issues, body, "stages", "stages config should be an array of strings")
        return list(DEFAULT_STAGES)
    too_long = [stage for stage in listed if len(stage) > MAX_STAGE_LENGTH]
    if too_long:
        _add(issues, body, "stages", f"stages config stage name is too long (maximum is {MAX_STAGE_LENGTH} characters)")
    middle = [stage for stage in dict.fromkeys(listed) if stage not in EDGE_STAGES]
    return [PRE_STAGE, *middle, POST_STAGE]


def global_variables(body: YamlMap, issues: IssueCollector) -> tuple[dict[str, str], frozenset[str]]:
    raw = body.get("variables")
    parsed = values.variables(
        raw, "variables", body.lines.get("variables"), issues, allowed_data=values.GLOBAL_VARIABLE_DATA
    )
    return parsed, values.raw_variable_names(raw)


def default(body: YamlMap, issues: IssueCollector) -> DefaultConfig:
    """``default:``, or the deprecated global keywords (never both for one keyword)."""
    holder = body.get("default")
    found: dict[str, Any] = {}
    if holder is not None and not isinstance(holder, YamlMap):
        _add(issues, body, "default", "default config should be a hash")
        holder = None
    if holder is not None:
        unknown = [str(key) for key in holder if key not in DEFAULT_KEYS]
        if unknown:
            _add(issues, holder, unknown[0], f"default config contains unknown keys: {', '.join(unknown)}")
    for key in SCRIPT_GLOBALS:
        source, location = body, key
        if holder is not None and key in holder:
            if body.get(key) is not None:
                _add(issues, body, key, f"{key} is defined in top-level and `default:` entry")
            source, location = holder, f"default:{key}"
        if source.get(key) is not None:
            parsed = values.commands(source[key], location, source.lines[key], issues, key=key)
            found[key] = parsed or []
    if holder is not None and holder.get("tags") is not None:
        found["tags"] = values.tags(holder["tags"], "default:tags", holder.lines["tags"], issues, key="tags") or []
    if holder is not None:
        parsed_keys, _ = keywords.parse(
            holder, "default", lambda message, key: _add(issues, holder, key, message), keywords.DEFAULT_INHERITABLE
        )
        found.update(parsed_keys)
    for key in KEYWORD_GLOBALS:
        if body.get(key) is None:
            continue
        if holder is not None and holder.get(key) is not None:
            _add(issues, body, key, f"{key} is defined in top-level and `default:` entry")
            continue
        parsed_keys, _ = keywords.parse(body, "", lambda message, key: _add(issues, body, key, message), (key,))
        found.update(parsed_keys)
    return DefaultConfig(**found)


def workflow(body: YamlMap, issues: IssueCollector) -> Workflow | None:
    raw = body.get("workflow")
    if raw is None:
        return None
    if not isinstance(raw, YamlMap):
        _add(issues, body, "workflow", "workflow config should be a hash")
        return None
    unknown = [str(key) for key in raw if key not in WORKFLOW_KEYS]
    if unknown:
        _add(issues, raw, unknown[0], f"workflow config contains unknown keys: {', '.join(unknown)}")
    parsed_rules = None
    if "rules" in raw:
        parsed_rules, problems = rules.parse_rules(raw["rules"], "workflow:rules", workflow=True)
        for problem, line in problems:
            _add(issues, raw, "rules", problem, line)
    name = raw.get("name")
    if name is not None:
        if not isinstance(name, str):
            _add(issues, raw, "name", "workflow name should be a string")
            name = None
        elif len(name) > MAX_PIPELINE_NAME:
            _add(issues, raw, "name", f"workflow name is too long (maximum is {MAX_PIPELINE_NAME} characters)")
    auto_cancel = raw.get("auto_cancel")
    if auto_cancel is not None and not _auto_cancel_valid(auto_cancel, "workflow:auto_cancel", raw, issues):
        auto_cancel = None
    return Workflow(parsed_rules, (name or "").strip() or None, auto_cancel)


def _auto_cancel_valid(value: Any, location: str, holder: YamlMap, issues: IssueCollector) -> bool:
    if not isinstance(value, dict):
        _add(issues, holder, "auto_cancel", f"{location} config should be a hash")
        return False
    unknown = [str(k) for k in value if k not in ("on_new_commit", "on_job_failure")]
    if unknown:
        _add(issues, holder, "auto_cancel", f"{location} config contains unknown keys: {', '.join(unknown)}")
        return False
    if value.get("on_new_commit", "conservative") not in AUTO_CANCEL_ON_NEW_COMMIT:
        _add(issues, holder, "auto_cancel", f"{location} on new commit must be one of: {', '.join(AUTO_CANCEL_ON_NEW_COMMIT)}")
        return False
    if value.get("on_job_failure", "none") not in AUTO_CANCEL_ON_JOB_FAILURE:
        _add(issues, holder, "auto_cancel", f"{location} on job failure must be one of: {', '.join(AUTO_CANCEL_ON_JOB_FAILURE)}")
        return False
    return True
