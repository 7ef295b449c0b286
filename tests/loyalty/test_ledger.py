"""The points ledger: FIFO consumption, expiry order, debt, append-only, events."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from app.loyalty import events
from app.loyalty.jobs import expire_points
from app.loyalty.ledger import InsufficientPoints, ledger_balance
from app.loyalty.models import EntryKind, LedgerEntry, PointLot, Program
from app.loyalty.service import enroll_customer
from app.loyalty.transactions import VelocityLimits, adjust_points, record_purchase, redeem_reward, refund_purchase

LIMITS = VelocityLimits(purchases_per_hour=1000, points_per_transaction=100_000)
JAN = datetime(2025, 1, 10, 12, tzinfo=UTC)


def _customer(world, now=JAN, **fields):
    with world.database.transaction() as session:
        program = session.get(Program, world.program_id)
        return enroll_customer(session=session, program=program, first_name="Grace", now=now, **fields).id


def _buy(world, customer_id, amount, now):
    with world.database.transaction() as session:
        purchase, _ = record_purchase(
            session=session,
            customer_id=customer_id,
            amount=Decimal(amount),
            currency="USD",
            store=None,
            cashier_id=None,
            limits=LIMITS,
            now=now,
        )
        return purchase.id


def _entries(world, customer_id):
    with world.database.transaction() as session:
        return [
            (e.kind, e.points)
            for e in session.scalars(
                select(LedgerEntry).where(LedgerEntry.customer_id == customer_id).order_by(LedgerEntry.id)
            )
        ]


def _consistent(world, customer_id) -> int:
    with world.database.transaction() as session:
        derived = ledger_balance(session=session, customer_id=customer_id)
        lots = sum(session.scalars(select(PointLot.remaining).where(PointLot.customer_id == customer_id)))
    cached = world.balance(customer_id)
    assert cached == derived
    assert lots == max(cached, 0)
    return cached


def test_redemptions_spend_the_oldest_points_and_expiry_takes_only_what_is_left_of_them(world):
    customer_id = _customer(world)  # 50 signup points, expire Jan 2026
    _buy(world, customer_id, "10.00", JAN + timedelta(days=1))  # 100 points, expire Jan 11 2026
    _buy(world, customer_id, "30.00", JAN + timedelta(days=60))  # 300 points, expire Mar 2026
    with world.database.transaction() as session:
        redeem_reward(
            session=session,
            customer_id=customer_id,
            reward_id=world.reward_ids["Free drip coffee"],
            store_id=None,
            cashier_id=None,
            now=JAN + timedelta(days=90),
        )  # -300: 50 + 100 + 150
    assert _consistent(world, customer_id) == 150

    expire_points(database=world.database, now=datetime(2026, 1, 12, tzinfo=UTC))
    assert _consistent(world, customer_id) == 150  # the two oldest lots were already spent

    expire_points(database=world.database, now=datetime(2026, 3, 12, tzinfo=UTC))
    assert _consistent(world, customer_id) == 0
    assert _entries(world, customer_id)[-1] == (EntryKind.expire, -150)


def test_expiry_removes_the_old_lot_and_keeps_the_young_one(world):
    customer_id = _customer(world)
    _buy(world, customer_id, "10.00", JAN)
    _buy(world, customer_id, "20.00", JAN + timedelta(days=200))
    expired = expire_points(database=world.database, now=JAN + timedelta(days=366))
    assert expired == 1
    assert _entries(world, customer_id)[-1] == (EntryKind.expire, -150)  # signup 50 + first purchase 100
    assert _consistent(world, customer_id) == 200
    # Running the job again the same day changes nothing.
    assert expire_points(database=world.database, now=JAN + timedelta(days=366)) == 0
    assert _consistent(world, customer_id) == 200


def test_a_refund_of_spent_points_leaves_a_debt_that_the_next_earning_pays_first(world):
    customer_id = _customer(world)
    purchase_id = _buy(world, customer_id, "30.00", JAN)  # 350 in total
    with world.database.transaction() as session:
        redeem_reward(
            session=session,
            customer_id=customer_id,
            reward_id=world.reward_ids["Free drip coffee"],
            store_id=None,
            cashier_id=None,
            now=JAN,
        )
        refund_purchase(session=session, purchase_id=purchase_id, amount=None, cashier_id=None, store_id=None, now=JAN)
    assert _consistent(world, customer_id) == -250
    _buy(world, customer_id, "40.00", JAN + timedelta(days=1))
    assert _consistent(world, customer_id) == 150
    with world.database.transaction() as session, pytest.raises(InsufficientPoints):
        redeem_reward(
            session=session,
            customer_id=customer_id,
            reward_id=world.reward_ids["Free drip coffee"],
            store_id=None,
            cashier_id=None,
            now=JAN + timedelta(days=1),
        )


def test_partial_refunds_add_up_to_exactly_the_points_earned(world):
    customer_id = _customer(world)
    purchase_id = _buy(world, customer_id, "10.00", JAN)  # 100 points
    reversed_points = []
    with world.database.transaction() as session:
        for part in ("3.33", "3.33", "3.34"):
            _, points = refund_purchase(
                session=session, purchase_id=purchase_id, amount=Decimal(part), cashier_id=None, store_id=None, now=JAN
            )
            reversed_points.append(points)
    assert sum(reversed_points) == 100
    assert _consistent(world, customer_id) == 50


def test_staff_adjustments_are_entries_with_their_reason(world):
    customer_id = _customer(world)
    with world.database.transaction() as session:
        adjust_points(
            session=session,
            customer_id=customer_id,
            points=-80,
            reason="duplicate signup",
            staff_user_id=world.staff[next(iter(world.staff))].id,
            now=JAN,
        )
    assert _consistent(world, customer_id) == -30
    with world.database.transaction() as session:
        entry = session.scalars(select(LedgerEntry).order_by(LedgerEntry.id.desc())).first()
        assert (entry.kind, entry.points, entry.reason) == (EntryKind.adjust, -80, "duplicate signup")


@pytest.mark.parametrize("statement", ["UPDATE ledger_entries SET points = 1000", "DELETE FROM ledger_entries"])
def test_the_database_refuses_to_change_the_ledger(world, statement):
    _customer(world)
    with pytest.raises(DatabaseError, match="append-only"), world.database.transaction() as session:
        session.execute(text(statement))
    with world.database.transaction() as session:
        assert session.scalar(select(LedgerEntry.points)) == 50


def test_balance_events_fire_with_the_entry(world):
    seen = []

    def receiver(customer, entry, previous_balance):
        seen.append((customer.id, entry.kind, entry.points, previous_balance))

    events.balance_changed.connect(receiver)
    try:
        customer_id = _customer(world)
        _buy(world, customer_id, "1.00", JAN)
    finally:
        events.balance_changed.disconnect(receiver)
    assert seen == [(customer_id, EntryKind.bonus, 50, 0), (customer_id, EntryKind.earn, 10, 50)]
