"""Bash script generation for job stages. Text only: executors run what this returns.

Every stage script starts with the same prelude (gitlab-runner ``shells/bash.go`` has the same
shape): ``set -eo pipefail``, the job variables exported with single-quote quoting, file
variables written to files under the job's temporary directory, then the stage body. User
commands are echoed as ``$ cmd`` in bold green before they run.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.runner.script.variables import SHELL_NAME, JobVariable

GREEN = r"\033[32;1m"
YELLOW = r"\033[0;33m"
RESET = r"\033[0;m"


@dataclass(frozen=True)
class ScriptContext:
    """Where a stage runs and with which (already resolved) variables."""

    project_dir: Path
    tmp_dir: Path
    variables: Sequence[JobVariable] = field(default_factory=tuple)
    debug_trace: bool = False


def quote(value: str) -> str:
    """Quote for bash: single quotes, so nothing inside is expanded. NUL cannot be passed."""
    return shlex.quote(value.replace("\x00", ""))


def printf_line(text: str, color: str = GREEN) -> str:
    """A command printing ``text`` in ``color`` on its own line."""
    return f"printf '{color}%s{RESET}\\n' {quote(text)}"


def printed(text: str, color: str = GREEN) -> bytes:
    """The bytes the command of :func:`printf_line` prints."""
    start, end = (code.replace("\\033", "\x1b") for code in (color, RESET))
    return f"{start}{text}{end}\n".encode()


def echo_command(command: str) -> str:
    """The ``$ cmd`` echo; multi-line commands show their first line only, as GitLab does."""
    lines = command.strip().splitlines() or [""]
    shown = lines[0] if len(lines) == 1 else f"{lines[0]} # collapsed multi-line command"
    return printf_line(f"$ {shown}")


def file_variable_path(ctx: ScriptContext, key: str) -> Path:
    return ctx.tmp_dir / key


def prelude(ctx: ScriptContext) -> list[str]:
    """Shell options and variable exports shared by every stage."""
    lines = ["set -eo pipefail", "set +o noclobber", ": # job variables"]
    file_variables: list[JobVariable] = []
    for variable in ctx.variables:
        if not SHELL_NAME.match(variable.key):
            lines.append(f": # skipped variable with a name bash cannot export: {quote(variable.key)}")
        elif variable.file:
            file_variables.append(variable)
        else:
            lines.append(f"export {variable.key}={quote(variable.value)}")
    if file_variables:
        lines.append(f"mkdir -p {quote(str(ctx.tmp_dir))}")
    for variable in file_variables:
        path = quote(str(file_variable_path(ctx, variable.key)))
        lines.append(f"(umask 077 && printf '%s' {quote(variable.value)} > {path})")
        lines.append(f"export {variable.key}={path}")
    if ctx.debug_trace:
        lines.append("set -o xtrace")
    return lines


def step_script(ctx: ScriptContext, commands: Iterable[str]) -> str:
    """The script of a user step (``step_script``, ``after_script``, ...)."""
    lines = prelude(ctx)
    lines.append(f"cd {quote(str(ctx.project_dir))}")
    for command in commands:
        if not command.strip():
            continue
        lines.append(echo_command(command))
        lines.append(command)
    return "\n".join(lines) + "\n"


def cleanup_script(ctx: ScriptContext) -> str:
    """Remove the job's temporary directory (file variables and the like)."""
    return f"set -eo pipefail\nrm -rf {quote(str(ctx.tmp_dir))}\n"
