"""``conveyor doctor postgres [URL...] [--json]``: the subtransaction danger in a primary and its replicas.

The checks live in ``server/db/doctor.py`` (imported when the command runs, so the CLI still
loads without the server's dependencies). Output: a Rich table per server, or ``--json``; exit
code 0 when everything is fine, 1 on a warning, 2 on danger or an unreachable server.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

_STYLE = {"ok": "green", "warning": "yellow", "danger": "bold red"}


def doctor_postgres(
    urls: Annotated[Optional[list[str]], typer.Argument(
        help="PostgreSQL URLs: the primary, then each replica. Default: CONVEYOR_DATABASE_URL and CONVEYOR_DATABASE_REPLICA_URLS.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    long_transaction: Annotated[float, typer.Option(help="Seconds open for a transaction to warn (10x: danger).")] = 60.0,
    idle_in_transaction: Annotated[float, typer.Option(help="Seconds idle in a transaction to warn (10x: danger).")] = 30.0,
    replica_lag: Annotated[float, typer.Option(help="Seconds of replica lag to warn (10x: danger).")] = 30.0,
) -> None:
    """Check PostgreSQL (13 to 17) for what makes replicas stall on subtransactions; exit 0/1/2."""
    from conveyor.server.db import doctor
    from conveyor.server.settings import ServerSettings

    if not urls:
        settings = ServerSettings.from_env()
        if not settings.database_url:
            raise typer.BadParameter("name the servers, or set CONVEYOR_DATABASE_URL (and CONVEYOR_DATABASE_REPLICA_URLS)")
        urls = [settings.database_url, *settings.replica_urls]
    thresholds = doctor.Thresholds(long_transaction, idle_in_transaction, replica_lag)
    reports = asyncio.run(doctor.examine_all(urls, thresholds))
    if as_json:
        typer.echo(json.dumps({"level": doctor.LEVELS[doctor.exit_code(reports)],
                               "servers": [report.as_dict() for report in reports]}, indent=2, default=str))
    else:
        _print(reports)
    raise typer.Exit(doctor.exit_code(reports))


def _print(reports: list) -> None:  # list[doctor.Report]
    console = Console()
    for report in reports:
        table = Table(title=f"{report.url}  ({report.role} {report.version})", title_justify="left")
        table.add_column("check")
        table.add_column("level")
        table.add_column("finding", overflow="fold")
        for finding in report.findings:
            table.add_row(finding.check, f"[{_STYLE[finding.level]}]{finding.level}[/]", finding.summary)
            for detail in finding.details[:5]:
                shown = ", ".join(f"{k}={v}" for k, v in detail.items() if v is not None)
                table.add_row("", "", f"[dim]{shown}[/]")
        console.print(table)
