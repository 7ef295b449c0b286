"""Tiers: earned by qualifying points in a rolling window, lifted for a while by a reward."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.loyalty import events
from app.loyalty.models import Customer, EntryKind, LedgerEntry, Program, Tier

# Points from purchases (and their refunds) qualify for a tier; bonuses and gifts do not.
QUALIFYING_KINDS = (EntryKind.earn, EntryKind.refund)


def qualifying_points(*, session: Session, customer: Customer, program: Program, now: datetime) -> int:
    since = now - timedelta(days=program.tier_window_days)
    return session.execute(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            LedgerEntry.customer_id == customer.id,
            LedgerEntry.kind.in_(QUALIFYING_KINDS),
            LedgerEntry.created_at > since,
        )
    ).scalar_one()


def tier_for_points(program: Program, points: int) -> Tier | None:
    """The highest tier whose threshold the points reach (tiers are ordered by threshold)."""
    reached = [tier for tier in program.tiers if tier.threshold <= points]
    return reached[-1] if reached else None


def effective_tier(
    *, session: Session, customer: Customer, program: Program, now: datetime, qualifying: int | None = None
) -> Tier | None:
    """The tier the customer holds now; `qualifying` saves the window's sum when the caller has it."""
    if qualifying is None:
        qualifying = qualifying_points(session=session, customer=customer, program=program, now=now)
    earned = tier_for_points(program, qualifying)
    if customer.tier_override_id and customer.tier_override_until and customer.tier_override_until > now:
        lifted = session.get(Tier, customer.tier_override_id)
        if lifted is not None and (earned is None or lifted.threshold > earned.threshold):
            return lifted
    return earned


def evaluate_tier(*, session: Session, customer: Customer, now: datetime, qualifying: int | None = None) -> Tier | None:
    """Recompute the customer's tier, store it, and announce a change."""
    program = customer.program
    tier = effective_tier(session=session, customer=customer, program=program, now=now, qualifying=qualifying)
    if (tier.id if tier else None) != customer.tier_id:
        previous = session.get(Tier, customer.tier_id) if customer.tier_id else None
        customer.tier_id = tier.id if tier else None
        session.flush()
        events.tier_changed.send(customer, previous_tier=previous, tier=tier)
    return tier


def next_tier(program: Program, current: Tier | None) -> Tier | None:
    above = [tier for tier in program.tiers if current is None or tier.threshold > current.threshold]
    return above[0] if above else None
