"""Terminal rendering for ``conveyor run``: live job logs line by line, and a status table."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

_SECTION = re.compile(rb"section_(?:start|end):\d+:[A-Za-z0-9_.-]+(?:\[[^\]]*\])?\r\x1b\[0K")
_STATUS_STYLE = {
    "success": "green",
    "failed": "red",
    "canceled": "magenta",
    "skipped": "dim",
    "running": "cyan",
    "pending": "yellow",
    "created": "dim",
    "manual": "blue",
    "scheduled": "blue",
    "waiting_for_resource": "yellow",
    "canceling": "magenta",
}
_PALETTE = ["cyan", "magenta", "yellow", "green", "blue", "bright_cyan", "bright_magenta"]


class LogPrinter:
    """Prints each job's log lines as they arrive, prefixed by the job name."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._partial: dict[int, bytes] = {}
        self._colors: dict[int, str] = {}

    def feed(self, job_id: int, name: str, data: bytes) -> None:
        buffer = self._partial.get(job_id, b"") + data
        *lines, rest = buffer.split(b"\n")
        self._partial[job_id] = rest
        for line in lines:
            self._print(job_id, name, line)

    def flush(self, job_id: int, name: str) -> None:
        rest = self._partial.pop(job_id, b"")
        if rest:
            self._print(job_id, name, rest)

    def _print(self, job_id: int, name: str, line: bytes) -> None:
        line = _SECTION.sub(b"", line).rstrip(b"\r")
        color = self._colors.setdefault(job_id, _PALETTE[len(self._colors) % len(_PALETTE)])
        text = Text(f"{name:>14.14} │ ", style=color)
        text.append_text(Text.from_ansi(line.decode("utf-8", errors="replace")))
        self._console.print(text, soft_wrap=True, highlight=False)


def status_table(pipeline: dict[str, Any], jobs: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Pipeline #{pipeline['id']} ({pipeline['ref']} @ {pipeline['sha'][:8]}): {pipeline['status']}")
    for column in ("job", "stage", "status", "duration", "note"):
        table.add_column(column)
    for job in jobs:
        duration = f"{job['duration']:.1f}s" if job.get("duration") is not None else "-"
        note = []
        if job.get("failure_reason"):
            note.append(job["failure_reason"])
        if job.get("exit_code"):
            note.append(f"exit {job['exit_code']}")
        if job["status"] == "failed" and job.get("allow_failure"):
            note.append("allowed to fail")
        style = _STATUS_STYLE.get(job["status"], "")
        table.add_row(job["name"], job["stage"], Text(job["status"], style=style), duration, ", ".join(note))
    return table
