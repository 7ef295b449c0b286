from __future__ import annotations

import click
from flask.cli import AppGroup

from app.audit.service import audited_transaction, cli_actor
from app.auth import service
from app.errors import Problem
from app.extensions import get_db, get_settings
from app.roles import Role

users_cli = AppGroup("users", help="Staff users.")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role if r is not Role.customer]), required=True)
@click.option("--store", "store_id", type=int, help="The store a cashier works at.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Prompted for when not given.")
def create_user(email: str, role: str, store_id: int | None, password: str) -> None:
    """Create a staff user: no prompt when every flag is given."""
    try:
        actor = cli_actor(settings=get_settings().audit, command="users create")
        with audited_transaction(get_db(), actor) as session:
            user = service.create_user(
                session=session,
                email=email,
                password=password,
                role=Role(role),
                store_id=store_id,
                password_cost=get_settings().password_hash_cost,
            )
    except Problem as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"created {user.role.value} {user.email} (id {user.id})")
