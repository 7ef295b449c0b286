from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import AppGroup

from app.messaging.outbox import drain_once
from app.messaging.providers import build_senders

messaging_cli = AppGroup("messaging", help="The message outbox.")


@messaging_cli.command("work")
@click.option("--once", is_flag=True, help="Drain what is due now, then exit.")
@click.option("--idle", default=1.0, show_default=True, help="Seconds to wait when nothing is due.")
def work(once: bool, idle: float) -> None:
    """Drain the outbox: claim due messages, send them, record the outcome."""
    senders = build_senders(current_app)
    database = current_app.extensions["database"]
    click.echo("message worker started")
    while True:
        handled = drain_once(database=database, senders=senders)
        if once and not handled:
            return
        if not handled:
            time.sleep(idle)
