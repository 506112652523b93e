"""``conveyor doctor``: checks of a deployment, one subcommand per module (``doctor_*.py``)."""

from __future__ import annotations

import typer

from conveyor.cli import doctor_network
from conveyor.cli.doctor_postgres import doctor_postgres

doctor_app = typer.Typer(help="Check a Conveyor deployment.", no_args_is_help=True)
doctor_app.command("network")(doctor_network.network_command)
doctor_app.command("postgres")(doctor_postgres)
