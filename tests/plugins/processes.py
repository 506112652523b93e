"""Process helpers for tests that check what a stage left running."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def gone(pid: int, within: float = 5.0) -> bool:
    """True once ``pid`` is dead; SIGKILL lands asynchronously, so allow the kernel a moment."""
    for _ in range(int(within / 0.05)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return not alive(pid)


def kill_working_in(directory: Path) -> list[int]:
    """SIGKILL every process whose working directory lies inside ``directory``; their pids.

    For a job shell that outlived its runner (it runs in its own session). Matching by working
    directory, not by command line, spares the jobs of other tests running at the same time on
    another pytest-xdist worker: their step scripts have the same command line.
    """
    root = directory.resolve()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == root or root in cwd.parents:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(int(entry.name))
    return killed
