"""``conveyor``: run a pipeline locally, or run the server, a runner, or drive a server."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from conveyor.cli.client import AdminClient, ApiError
from conveyor.cli.automation import hooks_app, schedules_app, variables_app
from conveyor.cli.doctor import doctor_app
from conveyor.cli.runner import runner_app
from conveyor.cli.users import users_app

app = typer.Typer(help="Conveyor: CI/CD that speaks GitLab CI.", no_args_is_help=True, add_completion=False)
project_app = typer.Typer(help="Projects on a running server.", no_args_is_help=True)
pipeline_app = typer.Typer(help="Pipelines on a running server.", no_args_is_help=True)
app.add_typer(project_app, name="project")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(runner_app, name="runner")
app.add_typer(doctor_app, name="doctor")
app.add_typer(variables_app, name="variables")
app.add_typer(schedules_app, name="schedules")
app.add_typer(hooks_app, name="hooks")
app.add_typer(users_app, name="users")
console = Console()
err = Console(stderr=True)

UrlOption = Annotated[str, typer.Option("--url", envvar="CONVEYOR_URL", help="Server URL.")]
TokenOption = Annotated[
    str, typer.Option("--token", envvar=["CONVEYOR_TOKEN", "CONVEYOR_INITIAL_ROOT_TOKEN"], help="Admin token (glpat-…).")
]


@app.command()
def run(
    path: Annotated[Path, typer.Argument(help="A git repository with a .gitlab-ci.yml.")] = Path("."),
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", envvar="CONVEYOR_DATA_DIR")] = None,
) -> None:
    """Run the pipeline of HEAD on an embedded server and runner; exit 1 if it fails."""
    from conveyor.cli import run as runner_of_pipelines
    from conveyor.server.settings import default_data_dir

    try:
        code = runner_of_pipelines.run(path.resolve(), (data_dir or default_data_dir()).resolve(), console)
    except (runner_of_pipelines.RunError, ApiError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


@app.command()
def server(
    host: Annotated[Optional[str], typer.Option(help="Bind address.")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (0 picks a free one).")] = None,
) -> None:
    """Run the Conveyor server (embedded PostgreSQL and Redis unless configured)."""
    from conveyor.server import serve
    from conveyor.server.settings import ServerSettings

    serve.run(ServerSettings.from_env(host=host, port=port))


CiFile = Annotated[Path, typer.Argument(help="The CI file; local includes are read from its directory.")]
RefOption = Annotated[str, typer.Option("--ref", "--branch", help="Branch (or tag, with --tag) to evaluate rules for.")]
TagOption = Annotated[bool, typer.Option("--tag", help="The ref is a tag.")]
SourceOption = Annotated[str, typer.Option("--source", help="CI_PIPELINE_SOURCE: push, web, api, schedule...")]
VariableOption = Annotated[Optional[list[str]], typer.Option("--variable", "-v", help="Pipeline variable KEY=VALUE.")]
ChangedOption = Annotated[Optional[list[str]], typer.Option("--changed", help="A changed file (rules:changes).")]
TemplatesOption = Annotated[Optional[Path], typer.Option(
    "--templates", envvar="CONVEYOR_CI_TEMPLATES_DIR",
    help="Directory of GitLab's CI templates (lib/gitlab/ci/templates) for include: template:.")]


def _ci(action, ref: str, tag: bool, source: str, variable: list[str] | None, changed: list[str] | None,  # noqa: ANN001, ANN202
        templates: Path | None = None):
    """Run ``action(path options)``: config errors as file:line: message (exit 1), others exit 2."""
    from conveyor import ciconfig
    from conveyor.cli import ci

    options = ci.Options(ref=ref, tag=tag, source=source, variables=tuple(variable or ()),
                         changed=tuple(changed) if changed else None, templates=templates)
    try:
        return action(ci, options)
    except ciconfig.ConfigError as exc:
        for line in ci.lint_lines(exc):
            typer.echo(line)
        raise typer.Exit(1) from exc
    except (OSError, ValueError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from exc


@app.command()
def lint(
    path: CiFile = Path(".gitlab-ci.yml"), ref: RefOption = "main", tag: TagOption = False,
    source: SourceOption = "push", variable: VariableOption = None, changed: ChangedOption = None,
    simulate: Annotated[bool, typer.Option(
        "--simulate", help="Also create the pipeline for the ref/source (rules, workflow), as GitLab's dry run.")] = False,
    templates: TemplatesOption = None,
) -> None:
    """Check a .gitlab-ci.yml: every error as file:line: message (exit 1), else a short OK."""
    if simulate:
        _, specs = _ci(lambda ci, options: ci.load(path, options), ref, tag, source, variable, changed, templates)
        typer.echo(f"{path}: OK ({len(specs)} jobs)")
        return
    config = _ci(lambda ci, options: ci.check(path, options), ref, tag, source, variable, changed, templates)
    typer.echo(f"{path}: OK ({len(config.jobs)} jobs)")


@app.command()
def expand(
    path: CiFile = Path(".gitlab-ci.yml"), ref: RefOption = "main", tag: TagOption = False,
    source: SourceOption = "push", variable: VariableOption = None, changed: ChangedOption = None,
    templates: TemplatesOption = None,
) -> None:
    """Print the expanded jobs as JSON (name, stage, when, allow_failure, needs, variables, script)."""
    text = _ci(lambda ci, options: ci.expanded_json(path, options), ref, tag, source, variable, changed, templates)
    typer.echo(text, nl=False)


@project_app.command("add")
def project_add(
    source: Annotated[str, typer.Argument(help="Local path or git URL.")],
    url: UrlOption = "http://127.0.0.1:8080",
    token: TokenOption = "",
    name: Annotated[Optional[str], typer.Option(help="Project name (default: the directory name).")] = None,
    poll: Annotated[Optional[int], typer.Option("--poll", help="Poll the repository every N seconds.")] = None,
    webhook_secret: Annotated[
        Optional[str], typer.Option("--webhook-secret", help="Secret of push webhooks (POST /projects/:id/webhook).")
    ] = None,
) -> None:
    """Register a repository with a running server; optionally poll it, or accept push webhooks."""
    if source and "://" not in source and not source.startswith("git@"):
        source = str(Path(source).resolve())
    sources = {k: v for k, v in {"poll_interval": poll, "webhook_secret": webhook_secret}.items() if v is not None}

    async def add(client: AdminClient) -> dict:
        project = await client.add_project(source, name)
        if sources:
            project["sources"] = await client.request("PUT", f"/projects/{project['id']}/sources", sources)
        return project

    _print(_call(url, token, add))


@pipeline_app.command("create")
def pipeline_create(
    project: Annotated[str, typer.Argument(help="Project id or name.")],
    url: UrlOption = "http://127.0.0.1:8080",
    token: TokenOption = "",
    ref: Annotated[Optional[str], typer.Option(help="Branch, tag or sha (default branch if unset).")] = None,
) -> None:
    """Create a pipeline for a project's ref on a running server."""
    _print(_call(url, token, lambda client: client.create_pipeline(project, ref)))


@pipeline_app.command("cancel")
def pipeline_cancel(
    project: Annotated[str, typer.Argument(help="Project id or name.")],
    pipeline: Annotated[int, typer.Argument(help="Pipeline id.")],
    url: UrlOption = "http://127.0.0.1:8080",
    token: TokenOption = "",
) -> None:
    """Cancel a pipeline: running jobs stop, the others never start."""
    _print(_call(url, token, lambda client: client.cancel_pipeline(project, pipeline)))


@pipeline_app.command("play")
def pipeline_play(
    project: Annotated[str, typer.Argument(help="Project id or name.")],
    job: Annotated[int, typer.Argument(help="Job id of a manual or scheduled (delayed) job.")],
    url: UrlOption = "http://127.0.0.1:8080",
    token: TokenOption = "",
) -> None:
    """Run a manual job, or a delayed one now."""
    _print(_call(url, token, lambda client: client.play_job(project, job)))


@pipeline_app.command("retry")
def pipeline_retry(
    project: Annotated[str, typer.Argument(help="Project id or name.")],
    pipeline: Annotated[Optional[int], typer.Argument(help="Pipeline id: retry its failed and canceled jobs.")] = None,
    job: Annotated[Optional[int], typer.Option("--job", help="Retry only this finished job.")] = None,
    url: UrlOption = "http://127.0.0.1:8080",
    token: TokenOption = "",
) -> None:
    """Run failed jobs again: a pipeline's failed and canceled ones, or one job (``--job``).

    Each gets a new attempt; the old one is kept as retried.
    """
    if (pipeline is None) == (job is None):
        err.print("[red]error:[/] give a pipeline id or --job JOB, not both")
        raise typer.Exit(2)
    if job is not None:
        _print(_call(url, token, lambda client: client.retry_job(project, job)))
    else:
        _print(_call(url, token, lambda client: client.retry_pipeline(project, pipeline)))


@pipeline_app.command("jobs")
def pipeline_jobs(
    project: Annotated[str, typer.Argument(help="Project id or name.")],
    pipeline: Annotated[int, typer.Argument(help="Pipeline id.")],
    url: UrlOption = "http://127.0.0.1:8080",
    token: TokenOption = "",
) -> None:
    """List a pipeline's jobs with their statuses."""
    _print(_call(url, token, lambda client: client.jobs(project, pipeline)))


def _call(url: str, token: str, action):  # noqa: ANN001, ANN202
    if not token:
        err.print("[red]error:[/] an admin token is needed (--token or CONVEYOR_TOKEN)")
        raise typer.Exit(2)

    async def go():  # noqa: ANN202
        async with AdminClient(url, token) as client:
            return await action(client)

    try:
        return asyncio.run(go())
    except ApiError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    except OSError as exc:
        err.print(f"[red]error:[/] cannot reach {url}: {exc}")
        raise typer.Exit(2) from exc


def _print(data: object) -> None:
    console.print_json(json.dumps(data))


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
