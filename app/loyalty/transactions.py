"""Purchases, refunds, redemptions and adjustments: each locks the customer, then posts entries."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db import rowcount, utcnow
from app.errors import Conflict, NotFound, TooManyRequests, Unprocessable
from app.loyalty import codes, events
from app.loyalty.ledger import credit, debit, expiry_for, lock_customer
from app.loyalty.models import (
    Customer,
    EntryKind,
    LedgerEntry,
    Program,
    Promotion,
    Purchase,
    Redemption,
    Referral,
    Reward,
    RewardKind,
    Rounding,
    Store,
    Tier,
)
from app.loyalty.tiers import evaluate_tier, qualifying_points

log = logging.getLogger(__name__)

_ROUNDING = {Rounding.floor: ROUND_FLOOR, Rounding.nearest: ROUND_HALF_UP, Rounding.ceil: ROUND_CEILING}


@dataclass(frozen=True)
class VelocityLimits:
    purchases_per_hour: int
    points_per_transaction: int


class VelocityLimitExceeded(TooManyRequests):
    slug, title = "velocity-limit", "Velocity limit reached"


class PointsLimitExceeded(Unprocessable):
    slug, title = "points-limit", "Too many points for one transaction"


class RewardUnavailable(Conflict):
    slug, title = "reward-unavailable", "Reward unavailable"


def best_promotion(
    *, session: Session, program: Program, store_id: int | None, tier: Tier | None, now: datetime
) -> Promotion | None:
    """The highest multiplier that applies; promotions do not stack."""
    return session.scalar(
        select(Promotion)
        .where(
            Promotion.program_id == program.id,
            Promotion.active.is_(True),
            Promotion.starts_at <= now,
            Promotion.ends_at > now,
            (Promotion.store_id.is_(None)) | (Promotion.store_id == store_id),
            (Promotion.tier_id.is_(None)) | (Promotion.tier_id == (tier.id if tier else None)),
        )
        .order_by(Promotion.multiplier.desc(), Promotion.id)
        .limit(1)
    )


def points_for(*, amount: Decimal, program: Program, multiplier: Decimal) -> int:
    raw = amount * program.points_per_unit * multiplier
    return int(raw.quantize(Decimal(1), rounding=_ROUNDING[program.rounding]))


def _check_velocity(*, session: Session, customer: Customer, limits: VelocityLimits, now: datetime) -> None:
    recent = session.execute(
        select(func.count(Purchase.id)).where(
            Purchase.customer_id == customer.id, Purchase.created_at > now - timedelta(hours=1)
        )
    ).scalar_one()
    if recent >= limits.purchases_per_hour:
        log.warning("velocity limit: customer %s made %s purchases in the last hour", customer.id, recent)
        raise VelocityLimitExceeded(
            f"This card already has {recent} purchases in the last hour (limit {limits.purchases_per_hour}).",
            limit=limits.purchases_per_hour,
        )


def _pay_referral(*, session: Session, customer: Customer, program: Program, now: datetime) -> None:
    """On the referee's first purchase, pay both sides once (the referral row is the latch)."""
    referral = session.scalar(
        select(Referral).where(Referral.referee_id == customer.id, Referral.rewarded_at.is_(None)).with_for_update()
    )
    if referral is None:
        return
    referral.rewarded_at = now
    expires_at = expiry_for(earned_at=now, expiry_months=program.expiry_months)
    if program.referee_bonus:
        credit(
            session=session,
            customer=customer,
            kind=EntryKind.bonus,
            points=program.referee_bonus,
            expires_at=expires_at,
            at=now,
            reason="referral bonus (referee)",
        )
    if program.referrer_bonus:
        referrer = lock_customer(session=session, customer_id=referral.referrer_id)
        credit(
            session=session,
            customer=referrer,
            kind=EntryKind.bonus,
            points=program.referrer_bonus,
            expires_at=expires_at,
            at=now,
            reason=f"referral bonus for customer {customer.id}",
        )


def record_purchase(
    *,
    session: Session,
    customer_id: int,
    amount: Decimal,
    currency: str,
    store: Store | None,
    cashier_id: int | None,
    limits: VelocityLimits,
    now: datetime | None = None,
) -> tuple[Purchase, LedgerEntry | None]:
    now = now or utcnow()
    customer = lock_customer(session=session, customer_id=customer_id)
    program = customer.program
    if currency.upper() != program.currency:
        raise Unprocessable(f"This program earns on {program.currency}, not {currency.upper()}.", field="currency")
    _check_velocity(session=session, customer=customer, limits=limits, now=now)
    # One sum over the tier window serves both evaluations: before (for the multiplier) and after.
    qualifying = qualifying_points(session=session, customer=customer, program=program, now=now)
    tier = evaluate_tier(session=session, customer=customer, now=now, qualifying=qualifying)
    store_id = store.id if store else None
    promotion = best_promotion(session=session, program=program, store_id=store_id, tier=tier, now=now)
    multiplier = (tier.multiplier if tier else Decimal(1)) * (promotion.multiplier if promotion else Decimal(1))
    points = points_for(amount=amount, program=program, multiplier=multiplier)
    if points > limits.points_per_transaction:
        log.warning("points limit: customer %s would earn %s points on %s", customer.id, points, amount)
        raise PointsLimitExceeded(
            f"This purchase would earn {points} points; one transaction may earn at most "
            f"{limits.points_per_transaction}.",
            limit=limits.points_per_transaction,
        )
    purchase = Purchase(
        customer_id=customer.id,
        store_id=store_id,
        cashier_id=cashier_id,
        amount=amount,
        currency=program.currency,
        points_earned=points,
        created_at=now,
    )
    session.add(purchase)
    session.flush()
    entry = None
    if points > 0:
        reason = f"purchase of {amount} {program.currency}" + (f" ({promotion.name})" if promotion else "")
        entry = credit(
            session=session,
            customer=customer,
            kind=EntryKind.earn,
            points=points,
            expires_at=expiry_for(earned_at=now, expiry_months=program.expiry_months),
            at=now,
            purchase_id=purchase.id,
            store_id=store_id,
            staff_user_id=cashier_id,
            reason=reason,
        )
    if customer.referred_by_id is not None:
        # The unpaid referral row is the latch: only the referee's first purchase finds it.
        _pay_referral(session=session, customer=customer, program=program, now=now)
    evaluate_tier(session=session, customer=customer, now=now, qualifying=qualifying + points)
    return purchase, entry


def refund_purchase(
    *,
    session: Session,
    purchase_id: int,
    amount: Decimal | None,
    cashier_id: int | None,
    store_id: int | None,
    now: datetime | None = None,
) -> tuple[Purchase, int]:
    """Reverse the points of a purchase, wholly or in proportion to a partial refund."""
    now = now or utcnow()
    purchase = session.get(Purchase, purchase_id)
    if purchase is None:
        raise NotFound(f"There is no purchase {purchase_id}.")
    customer = lock_customer(session=session, customer_id=purchase.customer_id)
    session.refresh(purchase, with_for_update=True)
    refundable = purchase.amount - purchase.refunded_amount
    amount = refundable if amount is None else amount
    if refundable <= 0:
        raise Conflict(f"Purchase {purchase_id} is already fully refunded.")
    if amount > refundable:
        raise Unprocessable(
            f"At most {refundable} {purchase.currency} of purchase {purchase_id} can still be refunded.",
            field="amount",
        )
    purchase.refunded_amount += amount
    # Reverse in proportion to what has been refunded so far, so partial refunds add up exactly.
    owed = int(
        (purchase.points_earned * purchase.refunded_amount / purchase.amount).quantize(Decimal(1), ROUND_HALF_UP)
    )
    points = owed - purchase.points_reversed
    purchase.points_reversed = owed
    if points > 0:
        debit(
            session=session,
            customer=customer,
            kind=EntryKind.refund,
            points=points,
            allow_negative=True,
            prefer_purchase_id=purchase.id,
            at=now,
            purchase_id=purchase.id,
            store_id=store_id,
            staff_user_id=cashier_id,
            reason=f"refund of {amount} {purchase.currency}",
        )
    evaluate_tier(session=session, customer=customer, now=now)
    return purchase, points


def _claim_stock(*, session: Session, reward: Reward) -> None:
    if reward.stock is None:
        return
    taken = rowcount(
        session.execute(update(Reward).where(Reward.id == reward.id, Reward.stock > 0).values(stock=Reward.stock - 1))
    )
    if not taken:
        raise RewardUnavailable(f"'{reward.name}' is out of stock.")


def _check_redeemable(*, reward: Reward | None, reward_id: int, customer: Customer, now: datetime) -> Reward:
    if reward is None or reward.program_id != customer.program_id:
        raise NotFound(f"There is no reward {reward_id} in this program.")
    if (
        not reward.active
        or (reward.active_from and reward.active_from > now)
        or (reward.active_until and reward.active_until <= now)
    ):
        raise RewardUnavailable(f"'{reward.name}' is not available right now.")
    return reward


def redeem_reward(
    *,
    session: Session,
    customer_id: int,
    reward_id: int,
    store_id: int | None,
    cashier_id: int | None,
    now: datetime | None = None,
) -> Redemption:
    now = now or utcnow()
    customer = lock_customer(session=session, customer_id=customer_id)
    reward = _check_redeemable(reward=session.get(Reward, reward_id), reward_id=reward_id, customer=customer, now=now)
    return _issue_redemption(
        session=session,
        customer=customer,
        reward=reward,
        points=reward.points_cost,
        store_id=store_id,
        cashier_id=cashier_id,
        now=now,
    )


def grant_reward(
    *, session: Session, customer_id: int, reward_id: int, store_id: int | None, now: datetime | None = None
) -> Redemption:
    """A reward given, not bought (a geofenced offer's gift): a redemption for no points, its code for the till."""
    now = now or utcnow()
    customer = lock_customer(session=session, customer_id=customer_id)
    reward = _check_redeemable(reward=session.get(Reward, reward_id), reward_id=reward_id, customer=customer, now=now)
    return _issue_redemption(
        session=session, customer=customer, reward=reward, points=0, store_id=store_id, cashier_id=None, now=now
    )


def _issue_redemption(
    *,
    session: Session,
    customer: Customer,
    reward: Reward,
    points: int,
    store_id: int | None,
    cashier_id: int | None,
    now: datetime,
) -> Redemption:
    if reward.kind is RewardKind.tier_upgrade:
        current = evaluate_tier(session=session, customer=customer, now=now)
        target = session.get(Tier, reward.tier_id)
        if current is not None and target is not None and current.threshold >= target.threshold:
            raise RewardUnavailable(f"The card is already in the {current.name} tier or above.")
    redemption = Redemption(
        customer_id=customer.id,
        reward_id=reward.id,
        store_id=store_id,
        cashier_id=cashier_id,
        points=points,
        created_at=now,
        code=codes.readable_code(4) + "-" + codes.readable_code(4) + "-" + codes.readable_code(4),
    )
    session.add(redemption)
    session.flush()
    if points:
        debit(
            session=session,
            customer=customer,
            kind=EntryKind.redeem,
            points=points,
            at=now,
            redemption_id=redemption.id,
            store_id=store_id,
            staff_user_id=cashier_id,
            reason=f"redeemed {reward.name}",
        )
    _claim_stock(session=session, reward=reward)
    if reward.kind is RewardKind.tier_upgrade:
        customer.tier_override_id = reward.tier_id
        customer.tier_override_until = now + timedelta(days=reward.tier_days or 365)
        evaluate_tier(session=session, customer=customer, now=now)
    events.reward_redeemed.send(customer, redemption=redemption, reward=reward)
    return redemption


def grant_bonus(
    *, session: Session, customer_id: int, points: int, reason: str, now: datetime | None = None
) -> LedgerEntry:
    """Points given, not earned (a geofenced offer's bonus); they expire like earned points."""
    now = now or utcnow()
    customer = lock_customer(session=session, customer_id=customer_id)
    return credit(
        session=session,
        customer=customer,
        kind=EntryKind.bonus,
        points=points,
        at=now,
        reason=reason,
        expires_at=expiry_for(earned_at=now, expiry_months=customer.program.expiry_months),
    )


def adjust_points(
    *, session: Session, customer_id: int, points: int, reason: str, staff_user_id: int, now: datetime | None = None
) -> LedgerEntry:
    """A staff correction. Credits expire like earned points; debits may go below zero."""
    now = now or utcnow()
    customer = lock_customer(session=session, customer_id=customer_id)
    if points > 0:
        return credit(
            session=session,
            customer=customer,
            kind=EntryKind.adjust,
            points=points,
            expires_at=expiry_for(earned_at=now, expiry_months=customer.program.expiry_months),
            at=now,
            staff_user_id=staff_user_id,
            reason=reason,
        )
    return debit(
        session=session,
        customer=customer,
        kind=EntryKind.adjust,
        points=-points,
        allow_negative=True,
        at=now,
        staff_user_id=staff_user_id,
        reason=reason,
    )
