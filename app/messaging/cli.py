from __future__ import annotations

import signal
import threading

import click
from flask.cli import AppGroup

from app.extensions import current_services, get_db, get_settings
from app.messaging.vapid import generate_vapid_key
from app.messaging.worker import run_worker

messaging_cli = AppGroup("messaging", help="The message outbox.")


@messaging_cli.command("work")
@click.option("--once", is_flag=True, help="Drain what is due now, then exit.")
@click.option("--idle", default=None, type=float, help="Seconds to wait when nothing is due (default: settings).")
def work(once: bool, idle: float | None) -> None:
    """Drain the outbox: claim due messages, check the rules, send, record the outcome."""
    settings = get_settings().messaging
    if idle is not None:
        settings = settings.model_copy(update={"idle_seconds": idle})
    stop = threading.Event()
    # SIGTERM finishes the batch in hand; anything cut off harder is re-leased by another worker.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo("message worker started")
    handled = run_worker(
        database=get_db(),
        senders=current_services().senders(),
        settings=settings,
        once=once,
        stop=stop,
    )
    click.echo(f"message worker stopped after {handled} messages")


@messaging_cli.command("vapid-keys")
@click.option("--force", is_flag=True, help="Replace the key (every browser subscription stops working).")
def vapid_keys(force: bool) -> None:
    """Create the Web Push (VAPID) key pair unless it exists; print the public key."""
    settings = get_settings().messaging
    if settings.vapid_private_key is not None:
        click.echo("the VAPID key comes from POINTCARD_MESSAGING__VAPID_PRIVATE_KEY; nothing written")
        return
    created, public = generate_vapid_key(settings.vapid_private_key_file, force=force)
    verb = "created" if created else "kept"
    click.echo(f"{verb} {settings.vapid_private_key_file}; public key {public}")
