from __future__ import annotations

import click
from flask.cli import AppGroup

from app import wiring
from app.extensions import current_services

events_cli = AppGroup("events", help="Signals and session hooks: what a change sets off.")


@events_cli.command("list")
def list_events() -> None:
    """Print every signal and session event with its receivers, in the order they run."""
    for name, meaning, receivers in wiring.describe(current_services()):
        click.echo(name)
        if meaning:
            click.echo(f"    {meaning}")
        for receiver in receivers or ["(nobody)"]:
            click.echo(f"  -> {receiver}")
