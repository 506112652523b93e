"""``artifacts:reports:dotenv``: the variables a job hands to the jobs after it (GitLab's
``Ci::ParseDotenvArtifactService``).

The report is parsed when it is uploaded; a bad one is refused with GitLab's message (400) and
nothing is stored. The variables are kept on the job (``jobs.dotenv_variables``) and reach every
job that takes the job's artifacts (earlier stage, ``needs`` with ``artifacts: true``,
``dependencies``, ``needs:pipeline:job``, ``needs:project``): above YAML variables, below
instance, project and pipeline variables. GitLab's rules:

* the uploaded file (gzip, as the runner sends it) must be smaller than 5 KiB
  (``Dotenv Artifact Too Big. Maximum Allowable Size: 5120``);
* one ``KEY=VALUE`` per line, split at the first ``=``, both sides stripped, quotes and ``#``
  kept as written, no variable expansion; an empty or ``=``-less line is ``Invalid Format``;
* keys are letters, digits and ``_`` (at most 255), a later line wins for the same key;
* at most 20 variables (GitLab's plan limit ``dotenv_variables``; GitLab.com allows 150);
* UTF-16 files (Windows PowerShell's ``Out-File``) are read, and a byte order mark dropped.
"""

from __future__ import annotations

import re

from conveyor.server.archive.test_reports import documents

TYPE = "dotenv"
SIZE_LIMIT = 5 * 1024  # GitLab's plan limit dotenv_size
VARIABLES_LIMIT = 20  # GitLab's plan limit dotenv_variables (default plan)
KEY_MAX = 255
_KEY = re.compile(r"[a-zA-Z0-9_]+")
_LINE = re.compile(r"(.*?)=(.*)")
_STRIP = " \t\n\v\f\r\0"  # Ruby's String#strip


class DotenvError(ValueError):
    """The report is refused: GitLab's message."""


def check_size(size: int, limit: int = SIZE_LIMIT) -> None:
    if not size < limit:
        raise DotenvError(f"Dotenv Artifact Too Big. Maximum Allowable Size: {limit}")


def parse(data: bytes, file_format: str, *, limit: int = VARIABLES_LIMIT) -> dict[str, str]:
    """The variables of an uploaded dotenv report, in file order; raises ``DotenvError``."""
    variables: dict[str, str] = {}
    for blob in documents(data, file_format):
        text = _decode(blob)
        for line in _lines(text):
            key, value = _scan(line)
            variables.pop(key, None)  # a later line wins, at its place
            variables[key] = value
    if len(variables) > limit:
        raise DotenvError(f"Dotenv files cannot have more than {limit} variables")
    return variables


def _decode(blob: bytes) -> str:
    if blob.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = blob.decode("utf-16", errors="replace")
    else:
        text = blob.decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff")


def _lines(text: str) -> list[str]:
    """Ruby's ``each_line``: split after every newline; no empty last line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _scan(line: str) -> tuple[str, str]:
    found = _LINE.fullmatch(line)
    if found is None:
        raise DotenvError("Invalid Format")
    key, value = found.group(1).strip(_STRIP), found.group(2).strip(_STRIP)
    problems = []
    if not key:
        problems.append("Key can't be blank")
    elif len(key) > KEY_MAX:
        problems.append(f"Key is too long (maximum is {KEY_MAX} characters)")
    if not _KEY.fullmatch(key):
        problems.append("Key can contain only letters, digits and '_'.")
    if problems:
        raise DotenvError("Validation failed: " + ", ".join(problems))
    return key, value
