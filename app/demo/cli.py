from __future__ import annotations

import click
from flask.cli import AppGroup

from app.demo.seed import seed_demo
from app.extensions import get_db, get_settings

demo_cli = AppGroup("demo", help="Demo data for a local run.")


@demo_cli.command("seed")
def seed() -> None:
    """Create the demo program, stores, tiers, rewards and staff. Running it again changes nothing."""
    with get_db().transaction() as session:
        passwords = seed_demo(session=session, password_cost=get_settings().password_hash_cost)
    if passwords is None:
        click.echo("demo data already present; nothing changed")
        return
    click.echo("demo program created. Staff logins (shown only this once):")
    for email, password in passwords.items():
        click.echo(f"  {email:28} {password}")
