"""``conveyor runner``: register a runner in a ``config.toml`` and serve its entries.

``register`` verifies a ``glrt-`` token with ``POST runners/verify`` (runner-api.md 2.4: the
coordinator must answer JSON with a non-zero ``id``) and adds or replaces the ``[[runners]]`` entry;
``run`` serves every entry of the file. Without a subcommand, ``--url``/``--token`` run one
shell runner directly (``CONVEYOR_RUNNER_*`` settings), as ``conveyor run`` and older scripts do.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

runner_app = typer.Typer(
    help="Run jobs for a Conveyor or GitLab server.", invoke_without_command=True, add_completion=False
)
console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="CONVEYOR_RUNNER_CONFIG", help="The runner's config.toml."),
]
DEFAULT_CONFIG = Path("~/.conveyor-runner/config.toml")


@runner_app.callback()
def runner_main(
    ctx: typer.Context,
    url: Annotated[Optional[str], typer.Option(help="Coordinator URL.")] = None,
    token: Annotated[Optional[str], typer.Option(help="Runner token (glrt-…).")] = None,
    builds_dir: Annotated[Optional[Path], typer.Option(help="Where jobs check out and run.")] = None,
    check_interval: Annotated[Optional[float], typer.Option(help="Seconds between job requests.")] = None,
) -> None:
    """Without a subcommand: run one runner from options and CONVEYOR_RUNNER_* variables."""
    if ctx.invoked_subcommand is not None:
        return
    from conveyor import runner as runner_package
    from conveyor.runner.errors import SettingsError
    from conveyor.runner.settings import RunnerSettings

    given = {"url": url, "token": token, "builds_dir": builds_dir, "check_interval": check_interval}
    try:
        settings = RunnerSettings.from_env(**{name: value for name, value in given.items() if value is not None})
    except SettingsError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    raise typer.Exit(runner_package.main(settings))


@runner_app.command()
def register(
    url: Annotated[str, typer.Option(help="Coordinator URL (Conveyor or GitLab).")],
    token: Annotated[str, typer.Option(help="Runner authentication token (glrt-…).")],
    config: ConfigOption = DEFAULT_CONFIG,
    name: Annotated[str, typer.Option(help="Name shown in job logs.")] = "conveyor-runner",
    executor: Annotated[str, typer.Option(help="shell or docker.")] = "shell",
    tag: Annotated[Optional[list[str]], typer.Option("--tag", help="A tag (repeatable).")] = None,
    limit: Annotated[int, typer.Option(help="Jobs at once for this entry (0: no own limit).")] = 0,
    timestamps: Annotated[bool, typer.Option(help="Per-line timestamps in the job log.")] = False,
    builds_dir: Annotated[Optional[str], typer.Option(help="Default: builds/ next to the config.")] = None,
    concurrent: Annotated[Optional[int], typer.Option(help="Jobs at once over all entries.")] = None,
    listen_address: Annotated[Optional[str], typer.Option(help="host:port of /metrics.")] = None,
    check_interval: Annotated[Optional[float], typer.Option(help="Seconds between job requests.")] = None,
    docker_host: Annotated[str, typer.Option(help="unix:///… or tcp://host:port")] = "",
    docker_image: Annotated[str, typer.Option(help="Default image of docker jobs.")] = "",
    docker_pull_policy: Annotated[Optional[list[str]], typer.Option(help="always, if-not-present, never.")] = None,
) -> None:
    """Verify TOKEN with the coordinator and add the runner to CONFIG."""
    from conveyor.runner import config as config_file
    from conveyor.runner.client import CoordinatorClient
    from conveyor.runner.errors import SettingsError
    from conveyor.runner.settings import RunnerSettings, load_system_id

    path = config.expanduser().absolute()
    if executor not in ("shell", "docker"):
        err.print(f"[red]error:[/] unknown executor {executor!r}: use shell or docker")
        raise typer.Exit(2)
    try:
        current = config_file.load(path) if path.exists() else config_file.RunnerConfig()
        settings = RunnerSettings(
            url=url, token=token, builds_dir=path.parent / "builds", executor=executor,
            system_id=load_system_id(path.parent),
        )  # fmt: skip
    except SettingsError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc

    async def verify():  # noqa: ANN202
        async with CoordinatorClient(settings) as client:
            return await client.verify()

    result = asyncio.run(verify())
    if not result.valid or result.details is None or not result.details.id:
        err.print(f"[red]error:[/] failed to verify the runner at {url}: {result.error or 'no runner id in the answer'}")
        raise typer.Exit(1)
    docker: dict[str, object] = {}
    if executor == "docker" or docker_host or docker_image:
        docker = {key: value for key, value in {"host": docker_host, "image": docker_image}.items() if value}
        docker["pull_policy"] = list(docker_pull_policy or ["if-not-present"])
    entry = config_file.RunnerEntry(
        url=url, token=result.details.token or token, name=name, id=result.details.id,
        token_expires_at=result.details.token_expires_at or "", executor=executor,
        builds_dir=builds_dir or "", tags=list(tag or []), limit=limit, docker=docker, timestamps=timestamps,
    )  # fmt: skip
    updated = current.with_entry(entry)
    if concurrent is not None:
        updated = dataclasses.replace(updated, concurrent=concurrent)
    if listen_address is not None:
        updated = dataclasses.replace(updated, listen_address=listen_address)
    if check_interval is not None:
        updated = dataclasses.replace(updated, check_interval=check_interval)
    config_file.save(updated, path)
    console.print(f"Runner [bold]{name}[/] (id {result.details.id}) registered in {path}")


@runner_app.command("run")
def run_command(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Serve every runner entry of CONFIG until SIGTERM (twice: abort running jobs)."""
    from conveyor import runner as runner_package
    from conveyor.runner import config as config_file
    from conveyor.runner.errors import SettingsError

    path = config.expanduser().absolute()
    try:
        loaded = config_file.load(path)
        entries = loaded.settings(path)
    except SettingsError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    code = runner_package.main(entries, concurrent=loaded.concurrent, listen_address=loaded.listen_address)
    raise typer.Exit(code)
