from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conveyor.runner.script import bash
from conveyor.runner.script.variables import JobVariable

pytestmark = pytest.mark.unit

TRICKY = [
    "it's",
    'say "hi"',
    "$HOME and ${PATH} and $(echo pwned) and `echo pwned`",
    "back\\slash\\n",
    "multi\nline\n\nvalue\n",
    "  leading and trailing  ",
    "-n",
    "",
    "ünïcødé ✓",
    "semi;colon && amp | pipe > redirect",
    "'\"'\"'",
    "!history",
]


def run_bash(script: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["bash", "--noprofile", "--norc", "-c", script], cwd=cwd, capture_output=True, check=False)


def context(tmp_path: Path, variables: list[JobVariable]) -> bash.ScriptContext:
    project = tmp_path / "project"
    project.mkdir()
    return bash.ScriptContext(project, tmp_path / "project.tmp", variables)


def test_tricky_values_survive_export(tmp_path: Path) -> None:
    variables = [JobVariable(f"V{i}", value) for i, value in enumerate(TRICKY)]
    ctx = context(tmp_path, variables)
    commands = [f'printf "%s\\0" "$V{i}"' for i in range(len(TRICKY))]
    result = run_bash(bash.step_script(ctx, commands), tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for i, value in enumerate(TRICKY):
        echo = f"\x1b[32;1m$ printf \"%s\\0\" \"$V{i}\"\x1b[0;m\n".encode()
        assert out.startswith(echo)
        out = out[len(echo) :]
        expected = value.encode() + b"\0"
        assert out.startswith(expected), (value, out[:80])
        out = out[len(expected) :]
    assert out == b""


def test_file_variables_are_written_to_private_files(tmp_path: Path) -> None:
    value = "apiVersion: v1\nkind: 'Config'\n$NOT_EXPANDED\n"
    ctx = context(tmp_path, [JobVariable("KUBECONFIG", value, file=True)])
    result = run_bash(bash.step_script(ctx, ['cat "$KUBECONFIG"', 'echo "$KUBECONFIG"']), tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "project.tmp" / "KUBECONFIG"
    assert path.read_text() == value
    assert path.stat().st_mode & 0o777 == 0o600
    assert value.encode() in result.stdout
    assert f"{path}\n".encode() in result.stdout


def test_runs_in_the_project_dir_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    ctx = context(tmp_path, [])
    result = run_bash(bash.step_script(ctx, ["pwd", "false || true", "exit 3", "echo never"]), tmp_path)
    assert result.returncode == 3
    lines = result.stdout.decode().splitlines()
    assert lines[1] == str(tmp_path / "project")
    assert "never" not in result.stdout.decode().replace("$ echo never", "")


def test_pipefail_is_on(tmp_path: Path) -> None:
    ctx = context(tmp_path, [])
    result = run_bash(bash.step_script(ctx, ["false | cat", "echo unreachable"]), tmp_path)
    assert result.returncode == 1
    assert b"unreachable\n" not in result.stdout.replace(b"$ echo unreachable", b"")


def test_multi_line_commands_echo_their_first_line_only(tmp_path: Path) -> None:
    ctx = context(tmp_path, [])
    command = "if true; then\n  echo inside\nfi"
    result = run_bash(bash.step_script(ctx, [command]), tmp_path)
    assert result.returncode == 0
    assert result.stdout == b"\x1b[32;1m$ if true; then # collapsed multi-line command\x1b[0;m\ninside\n"


def test_unexportable_names_are_skipped(tmp_path: Path) -> None:
    ctx = context(tmp_path, [JobVariable("BAD-NAME", "x"), JobVariable("GOOD", "y")])
    result = run_bash(bash.step_script(ctx, ['echo "$GOOD"']), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"y\n")


def test_debug_trace_turns_on_xtrace_after_the_exports(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    ctx = bash.ScriptContext(project, tmp_path / "t", [JobVariable("SECRET", "s3cr3t")], debug_trace=True)
    result = run_bash(bash.step_script(ctx, ["true"]), tmp_path)
    assert result.returncode == 0
    assert b"s3cr3t" not in result.stderr
    assert b"+ true" in result.stderr


def test_cleanup_script_removes_the_tmp_dir(tmp_path: Path) -> None:
    ctx = context(tmp_path, [JobVariable("F", "x", file=True)])
    assert run_bash(bash.step_script(ctx, ["true"]), tmp_path).returncode == 0
    assert ctx.tmp_dir.exists()
    assert run_bash(bash.cleanup_script(ctx), tmp_path).returncode == 0
    assert not ctx.tmp_dir.exists()
