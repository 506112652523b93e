"""``coverage:``: the test coverage a finished job printed, found with the job's regex in its
log (GitLab's ``Ci::Trace::Stream#extract_coverage``).

Lines are searched from the last one up; in the first line the regex matches, the last match
counts (its last capture group when the regex has groups), and the coverage is the first number
in it. Only the log's tail is read: coverage summaries come at the end.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.db import queries

log = structlog.get_logger(__name__)

TAIL_BYTES = 4 * 1024 * 1024
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def extract(pattern: str, text: str) -> float | None:
    """The coverage in ``text`` for ``pattern`` (the regex without slashes), or None."""
    try:
        regex = re.compile(pattern)
    except re.error:
        return None
    for line in reversed(text.splitlines()):
        line = _ANSI.sub("", line.split("\r")[-1])
        matches = regex.findall(line)
        if not matches:
            continue
        last = matches[-1]
        if isinstance(last, tuple):
            last = next((group for group in reversed(last) if group), "")
        number = _NUMBER.search(last)
        if number is not None:
            return float(number.group())
    return None


async def record(engine: AsyncEngine, reader: Any, job_id: int, pattern: str | None) -> float | None:
    """Store the finished job's coverage when its spec has a ``coverage`` regex (``pattern``,
    which the final update read in the statement that finished the job)."""
    if not pattern:
        return None
    size = await reader.size(job_id)
    text = (await reader.read_all(job_id, max(0, size - TAIL_BYTES))).decode("utf-8", errors="replace")
    found = extract(pattern, text)
    if found is not None:
        async with engine.begin() as conn:
            await queries.jobs.set_coverage(conn, job_id, found)
        log.info("job_coverage", job_id=job_id, coverage=found)
    return found
