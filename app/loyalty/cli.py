from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.extensions import get_db
from app.loyalty.ledger import ledger_balance
from app.loyalty.models import Customer

loyalty_cli = AppGroup("loyalty", help="Loyalty program upkeep.")


@loyalty_cli.command("verify-balances")
def verify_balances() -> None:
    """Check every cached balance against the sum of its ledger; exit 1 on any mismatch."""
    bad = 0
    with get_db().transaction() as session:
        for customer in session.scalars(select(Customer).order_by(Customer.id)):
            derived = ledger_balance(session=session, customer_id=customer.id)
            if derived != customer.points_balance:
                bad += 1
                click.echo(f"customer {customer.id}: cached {customer.points_balance}, ledger {derived}")
    if bad:
        raise SystemExit(1)
    click.echo("every balance matches its ledger")
