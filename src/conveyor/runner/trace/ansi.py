"""How runner-generated trace lines look: ANSI colours and collapsible section markers.

GitLab folds ``section_start:<unix>:<name>\\r\\e[0K`` ... ``section_end:<unix>:<name>\\r\\e[0K``
(``lib/gitlab/regex.rb``); colours follow gitlab-runner ``helpers/ansi_colors.go``.
"""

from __future__ import annotations

import time

RESET = "\x1b[0;m"
CLEAR = "\x1b[0K"
BOLD_GREEN = "\x1b[32;1m"
BOLD_RED = "\x1b[31;1m"
YELLOW = "\x1b[0;33m"
BOLD_CYAN = "\x1b[36;1m"


def section_start(name: str, *, now: float | None = None, collapsed: bool = False) -> str:
    options = "[collapsed=true]" if collapsed else ""
    return f"section_start:{int(time.time() if now is None else now)}:{name}{options}\r{CLEAR}"


def section_end(name: str, *, now: float | None = None) -> str:
    return f"section_end:{int(time.time() if now is None else now)}:{name}\r{CLEAR}"


def plain(text: str) -> str:
    return f"{CLEAR}{text}{RESET}\n"


def header(text: str) -> str:
    """A stage header in bold cyan, e.g. ``Executing "step_script" stage of the job script``."""
    return f"{CLEAR}{BOLD_CYAN}{text}{RESET}{RESET}\n"


def success(text: str) -> str:
    return f"{BOLD_GREEN}{text}{RESET}\n"


def warning(text: str) -> str:
    return f"{YELLOW}WARNING: {text}{RESET}\n"


def error(text: str) -> str:
    return f"{BOLD_RED}ERROR: {text}{RESET}\n"
