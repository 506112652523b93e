"""``conveyor variables``, ``conveyor schedules``, ``conveyor hooks``: CI/CD variables, pipeline
schedules and project hooks on a running server, through its GitLab-compatible API."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Optional
from urllib.parse import quote

import typer
from rich.console import Console

from conveyor.cli.client import AdminClient, ApiError

variables_app = typer.Typer(help="CI/CD variables (a project's, or the instance's without --project).", no_args_is_help=True)
schedules_app = typer.Typer(help="Pipeline schedules of a project.", no_args_is_help=True)
hooks_app = typer.Typer(help="Webhooks a project sends on pipeline and job events.", no_args_is_help=True)
err = Console(stderr=True)

UrlOption = Annotated[str, typer.Option("--url", envvar="CONVEYOR_URL", help="Server URL.")]
TokenOption = Annotated[
    str, typer.Option("--token", envvar=["CONVEYOR_TOKEN", "CONVEYOR_INITIAL_ROOT_TOKEN"], help="Admin token (glpat-…).")
]
ProjectArg = Annotated[str, typer.Argument(help="Project id or name.")]
ProjectOption = Annotated[Optional[str], typer.Option("--project", "-p", help="Project id or name (else instance).")]
DEFAULT_URL = "http://127.0.0.1:8080"


def call(url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None, *, echo: bool = True) -> Any:
    """One API call, printed as JSON; exit 1 on an API error, 2 when the server is unreachable."""
    if not token:
        err.print("[red]error:[/] an admin token is needed (--token or CONVEYOR_TOKEN)")
        raise typer.Exit(2)

    async def go() -> Any:
        async with AdminClient(url, token) as client:
            return await client.request(method, path, body)

    try:
        result = asyncio.run(go())
    except ApiError as exc:
        err.print(f"[red]error:[/] {exc}", markup=False)
        raise typer.Exit(1) from exc
    except OSError as exc:
        err.print(f"[red]error:[/] cannot reach {url}: {exc}")
        raise typer.Exit(2) from exc
    if result is not None and echo:
        typer.echo(json.dumps(result, indent=2))
    return result


def _variables_path(project: str | None, key: str | None = None) -> str:
    base = f"/projects/{quote(project, safe='')}/variables" if project else "/admin/ci/variables"
    return f"{base}/{quote(key, safe='')}" if key else base


@variables_app.command("list")
def variables_list(project: ProjectOption = None, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    """List variables (values of masked-and-hidden ones are null)."""
    call(url, token, "GET", _variables_path(project))


@variables_app.command("set")
def variables_set(
    key: Annotated[str, typer.Argument()],
    value: Annotated[str, typer.Argument()],
    project: ProjectOption = None,
    masked: Annotated[bool, typer.Option(help="Mask in job logs (GitLab's value rules apply).")] = False,
    hidden: Annotated[bool, typer.Option(help="Masked and never shown again (new variables only).")] = False,
    protected: Annotated[bool, typer.Option(help="Only for protected branches and tags.")] = False,
    file: Annotated[bool, typer.Option("--file", help="A file variable: the job gets a path.")] = False,
    raw: Annotated[bool, typer.Option(help="Never expand $ references in the value.")] = False,
    scope: Annotated[str, typer.Option("--scope", help="Environment scope (projects only).")] = "*",
    description: Annotated[Optional[str], typer.Option()] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Create a variable, or update the one with this key (and scope)."""
    body: dict[str, Any] = {"key": key, "value": value, "masked": masked or hidden, "protected": protected,
                            "raw": raw, "variable_type": "file" if file else "env_var", "description": description}
    if project:
        body["environment_scope"] = scope
    exists = _exists(url, token, _variables_path(project, key) + (f"?filter[environment_scope]={quote(scope)}" if project else ""))
    if exists:
        body.pop("key")
        path = _variables_path(project, key) + (f"?filter[environment_scope]={quote(scope)}" if project else "")
        call(url, token, "PUT", path, body)
    else:
        if hidden:
            body["masked_and_hidden"] = True
        call(url, token, "POST", _variables_path(project), body)


def _exists(url: str, token: str, path: str) -> bool:
    async def go() -> bool:
        async with AdminClient(url, token) as client:
            try:
                await client.request("GET", path)
            except ApiError as exc:
                if exc.status == 404:
                    return False
                raise
            return True

    try:
        return asyncio.run(go())
    except ApiError as exc:
        err.print(f"[red]error:[/] {exc}", markup=False)
        raise typer.Exit(1) from exc


@variables_app.command("delete")
def variables_delete(
    key: Annotated[str, typer.Argument()],
    project: ProjectOption = None,
    scope: Annotated[Optional[str], typer.Option("--scope", help="Environment scope, when several.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Delete a variable."""
    suffix = f"?filter[environment_scope]={quote(scope)}" if scope and project else ""
    call(url, token, "DELETE", _variables_path(project, key) + suffix)


def _schedules(project: str, *rest: object) -> str:
    return "/".join([f"/projects/{quote(project, safe='')}/pipeline_schedules", *(str(r) for r in rest)])


@schedules_app.command("list")
def schedules_list(project: ProjectArg, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    """List a project's schedules with their next run."""
    call(url, token, "GET", _schedules(project))


@schedules_app.command("create")
def schedules_create(
    project: ProjectArg,
    cron: Annotated[str, typer.Option(help="Five-field cron, e.g. '0 3 * * *'.")],
    description: Annotated[str, typer.Option()],
    ref: Annotated[str, typer.Option()] = "main",
    timezone: Annotated[str, typer.Option("--timezone", help="IANA or Rails time zone name.")] = "UTC",
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it switched off.")] = False,
    variable: Annotated[Optional[list[str]], typer.Option("--variable", "-v", help="KEY=VALUE for its pipelines.")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Create a schedule (and its variables)."""
    created = call(url, token, "POST", _schedules(project), {
        "description": description, "ref": ref, "cron": cron, "cron_timezone": timezone, "active": not inactive})
    for item in variable or []:
        key, _, value = item.partition("=")
        call(url, token, "POST", _schedules(project, created["id"], "variables"), {"key": key, "value": value})


@schedules_app.command("play")
def schedules_play(project: ProjectArg, schedule: int, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    """Run a schedule's pipeline now."""
    call(url, token, "POST", _schedules(project, schedule, "play"))


@schedules_app.command("delete")
def schedules_delete(project: ProjectArg, schedule: int, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    """Delete a schedule."""
    call(url, token, "DELETE", _schedules(project, schedule))


def _hooks(project: str, *rest: object) -> str:
    return "/".join([f"/projects/{quote(project, safe='')}/hooks", *(str(r) for r in rest)])


@hooks_app.command("list")
def hooks_list(project: ProjectArg, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    """List a project's hooks (their secret tokens are never shown)."""
    call(url, token, "GET", _hooks(project))


@hooks_app.command("add")
def hooks_add(
    project: ProjectArg,
    hook_url: Annotated[str, typer.Argument(metavar="HOOK_URL", help="Where to POST the events.")],
    secret: Annotated[Optional[str], typer.Option("--secret", help="Sent as X-Gitlab-Token.")] = None,
    pipeline_events: Annotated[bool, typer.Option(help="Send pipeline events.")] = True,
    job_events: Annotated[bool, typer.Option(help="Send job events.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Add a hook for pipeline (and job) events."""
    call(url, token, "POST", _hooks(project), {"url": hook_url, "token": secret, "push_events": False,
                                                "pipeline_events": pipeline_events, "job_events": job_events})


@hooks_app.command("deliveries")
def hooks_deliveries(project: ProjectArg, hook: int, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    """A hook's delivery log, newest first: attempts, answer, error."""
    call(url, token, "GET", _hooks(project, hook, "deliveries"))


@hooks_app.command("delete")
def hooks_delete(project: ProjectArg, hook: int, url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    """Delete a hook."""
    call(url, token, "DELETE", _hooks(project, hook))
