"""The points ledger: every change is an appended entry; lots track what is left to spend.

Invariant, kept under the customer's row lock: when the balance is >= 0 it equals the sum of
the customer's open lots; when it is negative (a refund of points already spent) every lot is
empty and later credits pay the debt first.
"""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict
from app.loyalty import events
from app.loyalty.models import Customer, EntryKind, LedgerEntry, PointLot


class InsufficientPoints(Conflict):
    slug, title = "insufficient-points", "Not enough points"


def lock_customer(*, session: Session, customer_id: int) -> Customer:
    """The customer row, locked for this transaction (FOR UPDATE; SQLite's writes are serial)."""
    return session.execute(
        select(Customer).where(Customer.id == customer_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def expiry_for(*, earned_at: datetime, expiry_months: int | None) -> datetime | None:
    return earned_at + relativedelta(months=expiry_months) if expiry_months else None


def _append(
    *, session: Session, customer: Customer, kind: EntryKind, points: int, at: datetime, **cause
) -> LedgerEntry:
    previous = customer.points_balance
    customer.points_balance = previous + points
    entry = LedgerEntry(
        customer_id=customer.id,
        kind=kind,
        points=points,
        balance_after=customer.points_balance,
        created_at=at,
        **cause,
    )
    session.add(entry)
    session.flush()
    events.balance_changed.send(customer, entry=entry, previous_balance=previous)
    return entry


def credit(
    *,
    session: Session,
    customer: Customer,
    kind: EntryKind,
    points: int,
    expires_at: datetime | None,
    at: datetime | None = None,
    **cause,
) -> LedgerEntry:
    """Add points (the customer must be locked). A negative balance is paid back first."""
    if points <= 0:
        raise ValueError("a credit adds a positive number of points")
    at = at or utcnow()
    debt = max(0, -customer.points_balance)
    entry = _append(session=session, customer=customer, kind=kind, points=points, at=at, **cause)
    session.add(
        PointLot(
            customer_id=customer.id,
            entry_id=entry.id,
            purchase_id=cause.get("purchase_id"),
            points=points,
            remaining=max(0, points - debt),
            earned_at=at,
            expires_at=expires_at,
        )
    )
    return entry


def _open_lots(*, session: Session, customer_id: int, prefer_purchase_id: int | None) -> list[PointLot]:
    lots = list(
        session.scalars(
            select(PointLot)
            .where(PointLot.customer_id == customer_id, PointLot.remaining > 0)
            # Oldest-expiring first, lots that never expire last: what would expire soonest is spent first.
            .order_by(PointLot.expires_at.is_(None), PointLot.expires_at, PointLot.id)
        )
    )
    if prefer_purchase_id is not None:
        lots.sort(key=lambda lot: lot.purchase_id != prefer_purchase_id)
    return lots


def debit(
    *,
    session: Session,
    customer: Customer,
    kind: EntryKind,
    points: int,
    allow_negative: bool = False,
    prefer_purchase_id: int | None = None,
    at: datetime | None = None,
    **cause,
) -> LedgerEntry:
    """Take points away (the customer must be locked), drawing the oldest lots first.

    Only corrections (refunds, staff adjustments) may push the balance below zero; a
    redemption that does not fit raises InsufficientPoints and changes nothing.
    """
    if points <= 0:
        raise ValueError("a debit removes a positive number of points")
    if not allow_negative and customer.points_balance < points:
        raise InsufficientPoints(
            f"This needs {points} points and the card has {customer.points_balance}.",
            balance=customer.points_balance,
            required=points,
        )
    left = points
    for lot in _open_lots(session=session, customer_id=customer.id, prefer_purchase_id=prefer_purchase_id):
        if left == 0:
            break
        taken = min(lot.remaining, left)
        lot.remaining -= taken
        left -= taken
    return _append(session=session, customer=customer, kind=kind, points=-points, at=at or utcnow(), **cause)


def expire_due_lots(*, session: Session, customer: Customer, now: datetime) -> LedgerEntry | None:
    """Expire what is left of the customer's lots past their date, as one entry."""
    due = session.scalars(
        select(PointLot).where(PointLot.customer_id == customer.id, PointLot.remaining > 0, PointLot.expires_at <= now)
    ).all()
    total = sum(lot.remaining for lot in due)
    if total == 0:
        return None
    for lot in due:
        lot.remaining = 0
    return _append(
        session=session,
        customer=customer,
        kind=EntryKind.expire,
        points=-total,
        at=now,
        reason=f"{len(due)} lot(s) reached their expiry date",
    )


def customers_with_due_lots(*, session: Session, now: datetime, limit: int) -> list[int]:
    return list(
        session.scalars(
            select(PointLot.customer_id)
            .where(PointLot.remaining > 0, PointLot.expires_at <= now)
            .group_by(PointLot.customer_id)
            .order_by(PointLot.customer_id)
            .limit(limit)
        )
    )


def ledger_balance(*, session: Session, customer_id: int) -> int:
    """The balance recomputed from the ledger itself, to check the cached one against."""
    return session.execute(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(LedgerEntry.customer_id == customer_id)
    ).scalar_one()
