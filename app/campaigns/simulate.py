"""Synthetic visit histories written straight into the tables: for tests, demos and benchmarks.

Purchases are inserted as rows (no ledger entries, no points): the scoring reads purchases only.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.loyalty import codes
from app.loyalty.models import Card, Customer, Purchase


@dataclass
class History:
    first_name: str
    enrolled_at: datetime
    visits: list[tuple[datetime, Decimal]] = field(default_factory=list)
    phone: str | None = None


def every(days: float, *, first: datetime, last: datetime, amount: str = "4.50") -> list[tuple[datetime, Decimal]]:
    """Visits `days` apart, the last one at `last`, none before `first`."""
    visits, at = [], last
    while at >= first:
        visits.append((at, Decimal(amount)))
        at -= timedelta(days=days)
    return visits[::-1]


def random_history(rng: random.Random, *, name: str, start: datetime, end: datetime) -> History:
    """A customer with their own rate of visits who may stop for good after any visit (BG/NBD-like)."""
    enrolled = start + timedelta(days=rng.uniform(0, (end - start).days * 0.7))
    gap = rng.choice([3, 7, 7, 14, 30, 60])
    dropout = rng.betavariate(1, 5)  # each customer's own chance to stop after a visit
    visits, at = [], enrolled
    while at <= end:
        visits.append((at, Decimal(f"{rng.uniform(2, 40):.2f}")))
        if rng.random() < dropout:
            break
        at += timedelta(days=max(1.0, rng.expovariate(1 / gap)))
    return History(first_name=name, enrolled_at=enrolled, visits=visits)


def add_histories(session: Session, *, program_id: int, currency: str, histories: Iterable[History]) -> list[int]:
    """Customers (with cards) and their purchases; returns the customer ids in order."""
    ids = []
    purchases = []
    for history in histories:
        customer = Customer(
            program_id=program_id,
            first_name=history.first_name,
            phone=history.phone,
            referral_code=codes.readable_code(12),
            created_at=history.enrolled_at,
        )
        session.add(customer)
        session.flush()
        session.add(
            Card(
                customer_id=customer.id,
                member_number=codes.member_number(),
                barcode_token=codes.barcode_token(),
                access_token=secrets.token_urlsafe(24),
                created_at=history.enrolled_at,
                updated_at=history.enrolled_at,
            )
        )
        ids.append(customer.id)
        purchases += [
            {
                "customer_id": customer.id,
                "amount": amount,
                "currency": currency,
                "points_earned": 0,
                "refunded_amount": Decimal(0),
                "points_reversed": 0,
                "created_at": at,
            }
            for at, amount in history.visits
        ]
    if purchases:
        session.execute(insert(Purchase), purchases)
    session.flush()
    return ids
