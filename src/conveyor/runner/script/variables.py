"""Job variables as the runner resolves them before generating scripts.

Follows gitlab-runner ``common/spec/variables.go``: duplicates are allowed and the last one
wins; values of non-``raw`` variables have ``$NAME`` / ``${NAME}`` expanded once against the
other variables (unknown names become empty, ``$$`` is a literal ``$``); ``file`` variables are
written to a file whose path becomes the value; ``masked`` values are hidden in the trace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

from conveyor.protocol.models import JobPayload

_REFERENCE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TRUE_VALUES = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class JobVariable:
    key: str
    value: str
    file: bool = False
    masked: bool = False
    raw: bool = False


def expand(value: str, lookup: Mapping[str, str]) -> str:
    """Expand ``$NAME`` and ``${NAME}`` once; ``$$`` stays a single ``$``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return "$" if name is None else lookup.get(name, "")

    return _REFERENCE.sub(replace, value)


def resolve(
    job: JobPayload, runner_defined: Iterable[JobVariable] = (), overrides: Iterable[JobVariable] = ()
) -> list[JobVariable]:
    """All variables of a job in export order, last definition winning, values expanded.

    Args:
        runner_defined: variables the runner adds before the job's (job variables may override).
        overrides: variables the runner sets after the job's (e.g. ``CI_PROJECT_DIR``).
    """
    ordered: dict[str, JobVariable] = {}
    job_variables = (
        JobVariable(v.key, v.value, file=bool(v.file), masked=v.masked, raw=bool(v.raw)) for v in job.variables
    )
    for variable in (*runner_defined, *job_variables, *overrides):
        ordered.pop(variable.key, None)  # re-insert so the winner keeps its (later) position
        ordered[variable.key] = variable
    lookup = {key: variable.value for key, variable in ordered.items()}
    return [
        v if v.raw else JobVariable(v.key, expand(v.value, lookup), file=v.file, masked=v.masked, raw=v.raw)
        for v in ordered.values()
    ]


def lookup(variables: Iterable[JobVariable], key: str, default: str = "") -> str:
    """The value of ``key`` (last definition wins)."""
    value = default
    for variable in variables:
        if variable.key == key:
            value = variable.value
    return value


def is_true(variables: Iterable[JobVariable], key: str) -> bool:
    return lookup(variables, key).strip().lower() in TRUE_VALUES


def masked_values(job: JobPayload) -> list[str]:
    """Everything the trace must never show: masked variable values and the job token, each also
    as it reads percent-encoded in a URL (``quote``: ``/`` ``+`` ``=`` ``@`` ``:`` become ``%2F``...;
    ``quote_plus`` for form bodies). gitlab-runner's masker matches the literal value only (and
    masks sensitive URL parameters); masked values are Base64-like, so they travel encoded often."""
    values = [v.value for v in job.variables if v.masked] + [job.token]
    encoded = [form for value in values for form in (quote(value, safe=""), quote_plus(value, safe=""))]
    return list(dict.fromkeys(values + encoded))
