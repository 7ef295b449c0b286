"""Tiers, referrals, signup bonus, promotions and rounding."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.loyalty import events
from app.loyalty.jobs import recalculate_tiers
from app.loyalty.models import Program, Promotion, Rounding, Store, Tier
from app.loyalty.service import enroll_customer
from app.loyalty.transactions import (
    RewardUnavailable,
    VelocityLimits,
    adjust_points,
    points_for,
    record_purchase,
    redeem_reward,
    refund_purchase,
)

LIMITS = VelocityLimits(purchases_per_hour=1000, points_per_transaction=100_000)
NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _enroll(world, referral_code=None, now=NOW):
    with world.database.transaction() as session:
        program = session.get(Program, world.program_id)
        customer = enroll_customer(
            session=session, program=program, first_name="Alan", now=now, referral_code=referral_code
        )
        return customer.id, customer.referral_code


def _buy(world, customer_id, amount, now=NOW, store_id=None):
    with world.database.transaction() as session:
        store = session.get(Store, store_id) if store_id else None
        purchase, _ = record_purchase(
            session=session,
            customer_id=customer_id,
            amount=Decimal(amount),
            currency="USD",
            store=store,
            cashier_id=None,
            limits=LIMITS,
            now=now,
        )
        return purchase.id, purchase.points_earned


def _tier(world, customer_id):
    customer = world.customer(customer_id)
    if customer.tier_id is None:
        return None
    with world.database.transaction() as session:
        return session.get(Tier, customer.tier_id).name


def test_promotion_when_the_window_fills_and_demotion_when_it_rolls_past(world):
    changes = []
    receiver = lambda customer, previous_tier, tier: changes.append(  # noqa: E731
        (previous_tier.name if previous_tier else None, tier.name if tier else None)
    )
    events.tier_changed.connect(receiver)
    try:
        customer_id, _ = _enroll(world)
        assert _tier(world, customer_id) == "Bronze"
        _buy(world, customer_id, "49.90", NOW)  # 499 qualifying points: not yet Silver
        assert _tier(world, customer_id) == "Bronze"
        _, earned = _buy(world, customer_id, "0.10", NOW + timedelta(days=1))  # 500
        assert earned == 1 and _tier(world, customer_id) == "Silver"
        # The Silver multiplier (1.25) applies from the next purchase on.
        assert _buy(world, customer_id, "10.00", NOW + timedelta(days=2))[1] == 125

        # A year later the first purchase leaves the window: 126 qualifying points, back to Bronze.
        assert recalculate_tiers(database=world.database, now=NOW + timedelta(days=366)) == 1
        assert _tier(world, customer_id) == "Bronze"
    finally:
        events.tier_changed.disconnect(receiver)
    assert changes == [(None, "Bronze"), ("Bronze", "Silver"), ("Silver", "Bronze")]


def test_bonus_points_do_not_qualify_for_a_tier_and_refunds_take_qualification_back(world):
    customer_id, _ = _enroll(world)
    purchase_id, _ = _buy(world, customer_id, "50.00")
    assert _tier(world, customer_id) == "Silver"
    with world.database.transaction() as session:
        refund_purchase(
            session=session, purchase_id=purchase_id, amount=Decimal("1.00"), cashier_id=None, store_id=None, now=NOW
        )
    assert _tier(world, customer_id) == "Bronze"  # 490 qualifying; the 50 signup points never counted


def test_a_tier_upgrade_reward_lifts_the_tier_until_it_lapses(world):
    other_id, _ = _enroll(world)
    _buy(world, other_id, "40.00")
    with world.database.transaction() as session:
        # Adjusted points can be spent but do not qualify: the customer stays Bronze on merit.
        adjust_points(
            session=session,
            customer_id=other_id,
            points=3000,
            reason="goodwill",
            staff_user_id=world.staff[next(iter(world.staff))].id,
            now=NOW,
        )
        redeem_reward(
            session=session,
            customer_id=other_id,
            reward_id=world.reward_ids["Gold for 90 days"],
            store_id=None,
            cashier_id=None,
            now=NOW,
        )
    assert _tier(world, other_id) == "Gold"
    recalculate_tiers(database=world.database, now=NOW + timedelta(days=89))
    assert _tier(world, other_id) == "Gold"
    recalculate_tiers(database=world.database, now=NOW + timedelta(days=91))
    assert _tier(world, other_id) == "Bronze"


def test_a_tier_upgrade_is_refused_to_a_customer_already_there(world):
    customer_id, _ = _enroll(world)
    _buy(world, customer_id, "600.00")
    with pytest.raises(RewardUnavailable, match="already"), world.database.transaction() as session:
        redeem_reward(
            session=session,
            customer_id=customer_id,
            reward_id=world.reward_ids["Gold for 90 days"],
            store_id=None,
            cashier_id=None,
            now=NOW,
        )


def test_referral_bonus_is_paid_once_on_the_referees_first_purchase(world):
    referrer_id, code = _enroll(world)
    referee_id, _ = _enroll(world, referral_code=code.lower())
    assert world.balance(referrer_id) == 50 and world.balance(referee_id) == 50
    purchase_id, _ = _buy(world, referee_id, "1.00")
    assert world.balance(referrer_id) == 50 + 100
    assert world.balance(referee_id) == 50 + 10 + 50
    with world.database.transaction() as session:
        refund_purchase(session=session, purchase_id=purchase_id, amount=None, cashier_id=None, store_id=None, now=NOW)
    _buy(world, referee_id, "1.00")
    _buy(world, referee_id, "1.00")
    assert world.balance(referrer_id) == 150
    assert world.balance(referee_id) == 50 + 50 + 20


def test_an_unknown_referral_code_is_refused(world):
    from app.errors import Unprocessable

    with pytest.raises(Unprocessable, match="referral code"):
        _enroll(world, referral_code="NOPE1234")


def test_the_best_matching_promotion_multiplies_and_they_do_not_stack(world):
    customer_id, _ = _enroll(world)
    store_a, store_b = world.store_ids[:2]
    with world.database.transaction() as session:
        session.add_all(
            [
                Promotion(
                    program_id=world.program_id,
                    name="double week",
                    multiplier=Decimal(2),
                    starts_at=NOW - timedelta(days=1),
                    ends_at=NOW + timedelta(days=6),
                ),
                Promotion(
                    program_id=world.program_id,
                    name="store A triple",
                    multiplier=Decimal(3),
                    starts_at=NOW - timedelta(days=1),
                    ends_at=NOW + timedelta(days=6),
                    store_id=store_a,
                ),
                Promotion(
                    program_id=world.program_id,
                    name="Gold 5x",
                    multiplier=Decimal(5),
                    starts_at=NOW - timedelta(days=1),
                    ends_at=NOW + timedelta(days=6),
                    tier_id=world.tier_ids["Gold"],
                ),
            ]
        )
    assert _buy(world, customer_id, "1.00", store_id=store_a)[1] == 30
    assert _buy(world, customer_id, "1.00", store_id=store_b)[1] == 20
    assert _buy(world, customer_id, "1.00", NOW + timedelta(days=7), store_id=store_a)[1] == 10


@pytest.mark.parametrize(
    ("rounding", "amount", "expected"),
    [
        (Rounding.floor, "1.29", 12),
        (Rounding.nearest, "1.25", 13),
        (Rounding.nearest, "1.24", 12),
        (Rounding.ceil, "1.21", 13),
    ],
)
def test_rounding_rules(rounding, amount, expected):
    program = Program(points_per_unit=Decimal(10), rounding=rounding)
    assert points_for(amount=Decimal(amount), program=program, multiplier=Decimal(1)) == expected
