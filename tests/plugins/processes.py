"""Process helpers for tests that check what a stage left running."""

from __future__ import annotations

import asyncio


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
