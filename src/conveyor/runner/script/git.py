"""The ``get_sources`` stage: fetch ``git_info.repo_url`` at ``git_info.sha`` into the project dir.

Honours ``GIT_STRATEGY`` (``clone``, ``fetch``, ``none``, ``empty``; default ``fetch`` when the
job allows it) and ``GIT_DEPTH``. ``repo_url`` may be an http(s) URL with credentials, a
``file://`` URL or a plain path. The URL is never echoed; the job token inside it is masked in
the trace anyway.
"""

from __future__ import annotations

import re

from conveyor.protocol.models import JobPayload
from conveyor.runner.script.bash import ScriptContext, prelude, printed, printf_line, quote
from conveyor.runner.script.variables import lookup

STRATEGIES = ("clone", "fetch", "none", "empty")
SKIPPING = "Skipping Git repository setup"
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


def strategy(job: JobPayload, ctx: ScriptContext) -> str:
    chosen = lookup(ctx.variables, "GIT_STRATEGY").strip().lower()
    if chosen in STRATEGIES:
        return chosen
    return "fetch" if job.allow_git_fetch else "clone"


def depth(job: JobPayload, ctx: ScriptContext) -> int:
    raw = lookup(ctx.variables, "GIT_DEPTH").strip()
    if raw.isdigit():
        return int(raw)
    return max(job.git_info.depth, 0)


def refspecs(job: JobPayload) -> list[str]:
    """What to fetch: the payload's refspecs, else one derived from ``ref`` and ``ref_type``."""
    git = job.git_info
    if git.refspecs:
        return list(git.refspecs)
    if not git.ref:
        return []
    if git.ref_type == "tag":
        return [f"+refs/tags/{git.ref}:refs/tags/{git.ref}"]
    return [f"+refs/heads/{git.ref}:refs/remotes/origin/{git.ref}"]


def without_shell(job: JobPayload, ctx: ScriptContext) -> bytes | None:
    """What ``get_sources`` prints when all it does is create the project directory
    (``GIT_STRATEGY: none``, no file variable to write, no shell tracing): the runner may then
    create it itself and log these bytes instead of starting bash. None when a script must run."""
    if ctx.debug_trace or strategy(job, ctx) != "none" or any(v.file for v in ctx.variables):
        return None
    return printed(SKIPPING)


def get_sources_script(job: JobPayload, ctx: ScriptContext) -> str:
    """The bash text of the ``get_sources`` stage."""
    lines = prelude(ctx)
    lines.append("export GIT_TERMINAL_PROMPT=0")
    project = quote(str(ctx.project_dir))
    chosen = strategy(job, ctx)
    if chosen == "none":
        lines += [printf_line(SKIPPING), f"mkdir -p {project}"]
        return "\n".join(lines) + "\n"
    if chosen in ("clone", "empty"):
        lines.append(f"rm -rf {project}")
    if chosen == "empty":
        lines.append(printf_line("Skipping Git repository setup and creating an empty build directory"))
        lines.append(f"mkdir -p {project}")
        return "\n".join(lines) + "\n"
    lines += _fetch(job, ctx)
    return "\n".join(lines) + "\n"


def _fetch(job: JobPayload, ctx: ScriptContext) -> list[str]:
    git = job.git_info
    fetch_depth = depth(job, ctx)
    depth_args = f" --depth {fetch_depth}" if fetch_depth > 0 else ""
    url = quote(git.repo_url)
    sha = git.sha if _SHA.match(git.sha or "") else ""
    specs = " ".join(quote(spec) for spec in refspecs(job))
    announce = f"Fetching changes with git depth set to {fetch_depth}..." if fetch_depth else "Fetching changes..."
    lines = [
        printf_line(announce),
        f"mkdir -p {quote(str(ctx.project_dir))}",
        f"cd {quote(str(ctx.project_dir))}",
        "if [ -d .git ]; then",
        "  rm -f .git/index.lock .git/shallow.lock .git/HEAD.lock .git/hooks/post-checkout",
        "  git init -q",
        printf_line("Reinitialized existing Git repository"),
        "else",
        "  git -c init.defaultBranch=main init -q",
        printf_line("Created fresh repository."),
        "fi",
        "git config fetch.recurseSubmodules false",
        f"git remote set-url origin {url} 2>/dev/null || git remote add origin {url}",
    ]
    if specs:
        lines.append(f"git fetch origin {specs}{depth_args} --prune --quiet")
    if sha:
        lines.append(f"git cat-file -e {sha}^{{commit}} 2>/dev/null || git fetch origin {sha}{depth_args} --quiet")
        target = sha
    elif specs:
        target = "FETCH_HEAD"
    else:
        lines.append(f"git fetch origin HEAD{depth_args} --quiet")
        target = "FETCH_HEAD"
    lines += [
        printf_line(f"Checking out {sha[:8] or target} as detached HEAD (ref is {git.ref or '-'})..."),
        f"git -c advice.detachedHead=false checkout -f -q {target}",
        "git clean -ffdx",
        printf_line("Skipping Git submodules setup"),
    ]
    return lines
