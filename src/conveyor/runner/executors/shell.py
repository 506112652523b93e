"""ShellExecutor: runs stage scripts with the local ``bash``, as the runner's own user.

Each stage runs ``bash <script file>`` with stdin from /dev/null, stdout and stderr merged into
one pipe, in a new session (its own process group). On timeout or cancel the whole group gets
SIGTERM, then SIGKILL after ``kill_grace`` seconds, so grandchildren (``sleep`` in a subshell,
background jobs) die too. When bash exits normally, leftover background processes of the group
are stopped the same way, so a forgotten ``&`` cannot keep the pipe open and hang the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

import structlog

from conveyor.runner.errors import ExecutorError
from conveyor.runner.executors.base import Executor, ExecutorContext, ExitResult, Output

log = structlog.get_logger(__name__)
READ_SIZE = 64 * 1024


class ShellExecutor(Executor):
    name = "shell"

    def __init__(self, context: ExecutorContext, *, bash: str = "bash", kill_grace: float = 10.0) -> None:
        super().__init__(context)
        self._bash_name = bash
        self._bash: str | None = None
        self._kill_grace = kill_grace
        self._scripts_dir: Path | None = None

    def runs_on_host(self, stage: str) -> bool:
        return True

    async def prepare(self) -> None:
        self._bash = shutil.which(self._bash_name, path=self.context.env.get("PATH") or os.defpath)
        if self._bash is None:
            raise ExecutorError(f"{self._bash_name} not found in PATH")
        try:
            self.context.builds_dir.mkdir(parents=True, exist_ok=True)
            self._scripts_dir = Path(tempfile.mkdtemp(prefix="conveyor-scripts-"))
        except OSError as exc:
            raise ExecutorError(f"cannot prepare the shell executor: {exc}") from exc

    async def run(
        self,
        script: str,
        *,
        stage: str,
        timeout: float,
        output: Output,
        cancel: asyncio.Event | None = None,
    ) -> ExitResult:
        if self._bash is None or self._scripts_dir is None:
            raise ExecutorError("the shell executor was not prepared")
        path = self._scripts_dir / f"{stage}.sh"
        path.write_text(script, encoding="utf-8")
        cwd = self.context.project_dir if self.context.project_dir.is_dir() else self.context.builds_dir
        spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(
            self._bash, "--noprofile", "--norc", str(path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=cwd, env=dict(self.context.env), start_new_session=True,
        ))  # fmt: skip
        try:
            proc = await asyncio.shield(spawn)
        except OSError as exc:
            raise ExecutorError(f"cannot start {self._bash}: {exc}") from exc
        except asyncio.CancelledError:
            # Cancelled while the process was starting (it may already run and have children):
            # asyncio would kill bash alone, so take the whole group down ourselves.
            with contextlib.suppress(Exception):
                started = await spawn
                _signal_group(started.pid, signal.SIGKILL)
                await _exited(started)
            raise
        assert proc.stdout is not None
        pump = asyncio.create_task(_pump(proc.stdout, output))
        exited = asyncio.create_task(_exited(proc))
        canceled = asyncio.create_task(cancel.wait()) if cancel is not None else None
        waiting = {exited} | ({canceled} if canceled else set())
        try:
            done, _ = await asyncio.wait(waiting, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
            # Stop the group: everything on timeout/cancel, leftover background jobs otherwise.
            await self._stop_group(proc.pid, exited)
            await self._drain(pump)
        except BaseException:
            await asyncio.shield(self._stop_group(proc.pid, exited))
            raise
        finally:
            pump.cancel()
            if canceled is not None:
                canceled.cancel()
        stopped = exited not in done
        was_canceled = stopped and canceled is not None and canceled in done
        code = proc.returncode if proc.returncode is not None else -1
        if code < 0:
            code = 128 - code  # killed by signal N -> 128 + N, as shells report it
        return ExitResult(exit_code=code, timed_out=stopped and not was_canceled, canceled=was_canceled)

    async def _drain(self, pump: asyncio.Task[None]) -> None:
        """Read the rest of the output; a process that left the group may hold the pipe open."""
        done, _ = await asyncio.wait({pump}, timeout=self._kill_grace)
        if not done:
            log.warning("output pipe still open after the stage ended; ignoring further output")

    async def _stop_group(self, pgid: int, exited: asyncio.Task[int]) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period; reap bash."""
        if not _signal_group(pgid, signal.SIGTERM):
            await exited
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._kill_grace
        while loop.time() < deadline and _group_alive(pgid):
            await asyncio.sleep(0.05)
        if _group_alive(pgid):
            log.warning("process group ignored SIGTERM; killing it", pgid=pgid)
            _signal_group(pgid, signal.SIGKILL)
        await exited

    async def cleanup(self) -> None:
        if self._scripts_dir is not None:
            shutil.rmtree(self._scripts_dir, ignore_errors=True)
            self._scripts_dir = None


async def _exited(proc: asyncio.subprocess.Process) -> int:
    """Wait until bash exits; unlike ``proc.wait()`` this does not wait for the pipe to close,
    which a leftover background process can keep open forever."""
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        readable = loop.create_future()
        loop.add_reader(pidfd, lambda: readable.done() or readable.set_result(None))
        try:
            await readable
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
    while proc.returncode is None:  # the child watcher reaps it a moment later
        await asyncio.sleep(0.01)
    return proc.returncode


async def _pump(stream: asyncio.StreamReader, output: Output) -> None:
    while chunk := await stream.read(READ_SIZE):
        output(chunk)


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """Is any non-zombie process left in the group?"""
    if not _signal_group(pgid, 0):
        return False
    if not os.path.isdir("/proc"):
        return True
    return any(_member_alive(entry, pgid) for entry in os.listdir("/proc") if entry.isdigit())


def _member_alive(pid: str, pgid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return int(fields[2]) == pgid and fields[0] != "Z"
