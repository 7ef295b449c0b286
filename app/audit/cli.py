"""`flask audit ...`: read the audit log from the command line."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.audit.models import AuditRecord
from app.audit.schemas import AuditRecordRead
from app.extensions import get_db

audit_cli = AppGroup("audit", help="The audit log of staff changes.")


@audit_cli.command("show")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--action", help="Exact, or a prefix ending in '.' such as 'reward.'")
@click.option("--actor", "actor_id", type=int, help="The staff user's id.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, oldest first.")
def show(limit: int, action: str | None, actor_id: int | None, as_json: bool) -> None:
    """The newest records, oldest of them first."""
    statement = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
    if action:
        statement = statement.where(
            AuditRecord.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else AuditRecord.action == action
        )
    if actor_id is not None:
        statement = statement.where(AuditRecord.actor_id == actor_id)
    with get_db().transaction() as session:
        records = [AuditRecordRead.model_validate(r) for r in reversed(session.scalars(statement).all())]
    for record in records:
        if as_json:
            click.echo(record.model_dump_json())
        else:
            who = record.actor_email or record.user_agent or "?"
            changed = ", ".join(sorted((record.changes or {}).keys()))
            click.echo(
                f"{record.at:%Y-%m-%d %H:%M:%S} {who} [{record.ip_address or '-'}] {record.action} "
                f"{record.entity_type}#{record.entity_id or '-'} {changed}"
            )
