"""Loyalty events -> pass updates: remember who changed, then bump their passes at commit.

A purchase can fire several events in one transaction (points, a tier, a referral bonus).
Collecting the customers and acting once, just before the transaction commits, gives one
new update tag and one push per device for all of them, and takes the tag as late as
possible, so a device is less likely to see a later tag before an earlier one commits.
The pushes are outbox rows written in the same transaction: nothing reaches Apple unless
the change is committed, and the till never waits on APNs.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, SessionTransaction

from app.db import session_of
from app.wallet.apple.service import passes_changed

_PENDING = "apple_wallet.changed_customers"


def customer_changed(customer, **_details) -> None:
    session = session_of(customer)
    if session is not None:
        session.info.setdefault(_PENDING, set()).add(customer.id)


def update_passes(session: Session) -> None:
    # Also runs when a savepoint is released: its changes are then final within the transaction.
    customer_ids = session.info.pop(_PENDING, None)
    if customer_ids:
        passes_changed(session=session, customer_ids=sorted(customer_ids))


def forget_on_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended; on commit the set is gone already
        session.info.pop(_PENDING, None)
