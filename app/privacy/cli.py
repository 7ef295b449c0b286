"""`flask privacy ...`: key rotation and key generation."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from app import encryption
from app.extensions import get_db, get_settings
from app.privacy import service

privacy_cli = AppGroup("privacy", help="Encryption keys of personal data.")


@privacy_cli.command("rotate-key")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Customers per transaction (default: POINTCARD_PRIVACY__ROTATE_BATCH_SIZE).",
)
def rotate_key_cmd(batch_size: int | None) -> None:
    """Re-encrypt every value not under the current key, one committed batch at a time.

    Safe to stop and run again: it picks up whatever is still under an old key. Keep the old
    keys configured until it reports nothing left.
    """
    database = get_db()
    size = batch_size or get_settings().privacy.rotate_batch_size
    key_id = encryption.keyring().current_key_id
    with database.transaction() as session:
        total = service.count_stale(session=session)
    done, last_id = 0, 0
    with click.progressbar(length=total, label=f"Re-encrypting under key {key_id}", file=sys.stderr) as bar:
        while True:
            with database.transaction() as session:
                ids = service.stale_ids(session=session, after_id=last_id, limit=size)
                service.reencrypt(session=session, customer_ids=ids)
            if not ids:
                break
            last_id, done = ids[-1], done + len(ids)
            bar.update(len(ids))
    click.echo(f"{done} customers re-encrypted under key {key_id}")


@privacy_cli.command("generate-key")
def generate_key_cmd() -> None:
    """Print a new random 32-byte key (base64) for POINTCARD_PRIVACY__KEYS or __INDEX_KEY."""
    click.echo(encryption.generate_key())
