"""`flask webhooks ...`."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import get_db
from app.webhooks import service

webhooks_cli = AppGroup("webhooks", help="Outgoing webhooks.")


@webhooks_cli.command("list")
def list_endpoints() -> None:
    """Every endpoint with its events and state."""
    with get_db().transaction() as session:
        for endpoint in service.list_endpoints(session=session):
            state = "active" if endpoint.active else f"off ({endpoint.disabled_reason or 'paused'})"
            click.echo(f"{endpoint.id}\t{endpoint.url}\t{','.join(endpoint.events)}\t{state}")


@webhooks_cli.command("ping")
@click.argument("endpoint_id", type=int)
def ping(endpoint_id: int) -> None:
    """Queue a ping event to one endpoint (a worker sends it)."""
    with get_db().transaction() as session:
        delivery = service.ping(session=session, endpoint_id=endpoint_id)
        click.echo(f"queued delivery {delivery.id} ({delivery.uuid})")
