"""Nightly loyalty upkeep. Each batch is its own transaction, so a crash loses at most one."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from app.db import Database, utcnow
from app.jobs import Job
from app.loyalty.ledger import customers_with_due_lots, expire_due_lots, lock_customer
from app.loyalty.models import Customer
from app.loyalty.tiers import evaluate_tier

log = logging.getLogger(__name__)
BATCH = 500


def expire_points(*, database: Database, now: datetime | None = None) -> int:
    """Expire every lot past its date; returns how many customers lost points."""
    now = now or utcnow()
    expired = 0
    while True:
        with database.transaction() as session:
            due = customers_with_due_lots(session=session, now=now, limit=BATCH)
            for customer_id in due:
                customer = lock_customer(session=session, customer_id=customer_id)
                if expire_due_lots(session=session, customer=customer, now=now):
                    expired += 1
                evaluate_tier(session=session, customer=customer, now=now)
        if len(due) < BATCH:
            log.info("expired points of %s customers", expired)
            return expired


def recalculate_tiers(*, database: Database, now: datetime | None = None) -> int:
    """Demote customers whose qualifying points left the rolling window; returns changes."""
    now = now or utcnow()
    changed, last_id = 0, 0
    while True:
        with database.transaction() as session:
            ids = list(
                session.scalars(
                    select(Customer.id)
                    .where(Customer.id > last_id, Customer.tier_id.is_not(None))
                    .order_by(Customer.id)
                    .limit(BATCH)
                )
            )
            for customer_id in ids:
                customer = lock_customer(session=session, customer_id=customer_id)
                before = customer.tier_id
                evaluate_tier(session=session, customer=customer, now=now)
                changed += customer.tier_id != before
        if len(ids) < BATCH:
            return changed
        last_id = ids[-1]


JOBS = [
    Job(
        name="loyalty.expire_points",
        func=expire_points,
        trigger="cron",
        trigger_args={"hour": 2, "minute": 15},
        timeout_minutes=60,
    ),
    Job(
        name="loyalty.recalculate_tiers",
        func=recalculate_tiers,
        trigger="cron",
        trigger_args={"hour": 3, "minute": 0},
        timeout_minutes=60,
    ),
]
