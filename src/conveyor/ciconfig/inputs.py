"""``spec:inputs`` and ``$[[ inputs.name ]]`` interpolation, when a file is loaded (GitLab's
``Config::Interpolation``): before merging, extends or anything else.

A file with a ``spec:`` header document gets its inputs from the ``include:inputs`` that
included it (or from the caller for the main file); each declared input has a ``type``
(string, number, boolean, array), an optional ``default`` (without one it is required),
``options`` and ``regex``. Keys and values are interpolated; a value that is exactly one block
takes the input's type (an array stays an array). Supported functions: ``truncate(start,
length)``, ``posix_escape`` and ``expand_vars`` (with the variables given).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from conveyor.ciconfig.values import is_int, scalar_text
from conveyor.ciconfig.yamlsource import YamlList, YamlMap

TYPES = ("array", "boolean", "number", "string")
MAX_OPTIONS = 50
MAX_BLOCK_BYTES = 1024
MAX_FUNCTIONS = 3
_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.S)
_TRUNCATE = re.compile(r"^truncate\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
INPUT_KEYS = frozenset({"type", "default", "options", "regex", "description"})


def resolve(
    header: YamlMap | None, given: Mapping[str, Any] | None, variables: Mapping[str, str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """The value of every declared input, or None when the file has no ``spec:inputs``.

    Returns:
        ``(values, errors)``; ``values`` is None when the file takes no inputs.
    """
    given = dict(given or {})
    spec = header.get("spec") if header is not None else None
    declared = spec.get("inputs") if isinstance(spec, dict) else None
    if declared is None:
        if given:
            return None, ["Given inputs not defined in the `spec` section of the included configuration file"]
        return None, []
    if not isinstance(declared, dict):
        return None, ["spec:inputs config must be a hash"]
    errors: list[str] = []
    unknown = [str(name) for name in given if name not in declared]
    if unknown:
        errors.append(f"unknown input arguments: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, raw_spec in declared.items():
        input_spec = raw_spec if isinstance(raw_spec, dict) else {}
        if raw_spec is not None and not isinstance(raw_spec, dict) or not set(input_spec) <= INPUT_KEYS:
            errors.append(f"unknown input specification for `{name}` (valid types: {', '.join(TYPES)})")
            continue
        kind = input_spec.get("type", "string")
        if kind not in TYPES:
            errors.append(f"unknown input specification for `{name}` (valid types: {', '.join(TYPES)})")
            continue
        problems = _validate(str(name), kind, input_spec, given.get(name))
        errors.extend(problems)
        if not problems:
            values[str(name)] = given[name] if given.get(name) is not None else input_spec.get("default")
    return values, errors


def _validate(name: str, kind: str, spec: dict[str, Any], value: Any) -> list[str]:
    prefix = f"`{name}` input: "
    if "default" not in spec and value is None:
        return [prefix + "required value has not been provided"]
    errors: list[str] = []
    checks = [("default", spec["default"])] if "default" in spec else []
    if value is not None:
        checks.append(("provided", value))
    for label, item in checks:
        if not _has_type(kind, item):
            article = "an" if kind == "array" else "a"
            errors.append(f"{prefix}{label} value is not {article} {kind}")
            continue
        options = spec.get("options")
        if options is not None:
            if kind not in ("string", "number"):
                errors.append(prefix + "Options can only be used with string and number inputs")
            elif len(options) > MAX_OPTIONS:
                errors.append(prefix + f"Options cannot exceed {MAX_OPTIONS} entries")
            elif item not in options:
                errors.append(f"{prefix}`{scalar_text(item)}` cannot be used because it is not in the list of allowed options")
        regex = spec.get("regex")
        if regex is not None:
            if kind != "string":
                errors.append(prefix + "RegEx validation can only be used with string inputs")
            elif label == "provided" or item != "":
                try:
                    matched = re.search(str(regex).strip("/"), item) is not None
                except re.error:
                    matched = False
                if not matched:
                    errors.append(f"{prefix}{label} value does not match required RegEx pattern")
    return errors


def _has_type(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return is_int(value) or isinstance(value, float)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, list)


def interpolate(value: Any, inputs: Mapping[str, Any], variables: Mapping[str, str], errors: list[str]) -> Any:
    """``value`` with every ``$[[ ... ]]`` block replaced; problems are appended to ``errors``."""
    if isinstance(value, str):
        return _string(value, inputs, variables, errors)
    if isinstance(value, YamlMap):
        made = YamlMap.empty(value.file, value.line)
        for key, item in value.items():
            new_key = _string(key, inputs, variables, errors) if isinstance(key, str) else key
            made[new_key] = interpolate(item, inputs, variables, errors)
            made.lines[new_key] = value.lines.get(key, value.line)
        return made
    if isinstance(value, YamlList):
        made_list = YamlList(interpolate(item, inputs, variables, errors) for item in value)
        made_list.line, made_list.lines = value.line, list(value.lines)
        return made_list
    return value


def _string(text: str, inputs: Mapping[str, Any], variables: Mapping[str, str], errors: list[str]) -> Any:
    if "$[[" not in text:
        return text
    whole = _BLOCK.fullmatch(text)
    if whole:
        return _block(whole.group(1), inputs, variables, errors)

    def substitute(match: re.Match[str]) -> str:
        found = _block(match.group(1), inputs, variables, errors)
        return found if isinstance(found, str) else scalar_text(found) if not isinstance(found, list | dict) else str(found)

    return _BLOCK.sub(substitute, text)


def _block(content: str, inputs: Mapping[str, Any], variables: Mapping[str, str], errors: list[str]) -> Any:
    if len(content.encode()) > MAX_BLOCK_BYTES:
        errors.append("maximum interpolation expression size exceeded")
        return ""
    access, *functions = (part.strip() for part in content.split("|"))
    objects = access.split(".")
    if len(objects) <= 1:
        errors.append("invalid interpolation access pattern")
        return ""
    if objects[0] != "inputs" or len(objects) != 2 or objects[1] not in inputs:
        unknown = objects[0] if objects[0] != "inputs" else objects[-1]
        errors.append(f"unknown interpolation key: `{unknown}`")
        return ""
    value = inputs[objects[1]]
    if len(functions) > MAX_FUNCTIONS:
        errors.append("too many functions in interpolation block")
        return ""
    for function in functions:
        value = _function(function, value, variables, errors)
    return value


def _function(name: str, value: Any, variables: Mapping[str, str], errors: list[str]) -> Any:
    text = value if isinstance(value, str) else scalar_text(value) if not isinstance(value, list) else str(value)
    truncate = _TRUNCATE.match(name)
    if truncate:
        start, length = int(truncate.group(1)), int(truncate.group(2))
        return text[start : start + length]
    if name == "posix_escape":  # Ruby's Shellwords.escape
        return re.sub(r"([^A-Za-z0-9_\-.,:+/@\n])", r"\\\1", text).replace("\n", "'\n'") if text else "''"
    if name == "expand_vars":
        from conveyor.ciconfig.expansion import expand

        return expand(text, variables)
    errors.append(f"no function matching `{name}`: check that the function name, arguments, and types are correct")
    return value
