"""Re-engagement: a sequence of steps for each customer who becomes lapsing, stopped by a visit.

After the nightly scoring, every live re-engagement campaign enrols the program's lapsing
customers (narrowed by its segment, if it has one) who are in no sequence and were in none
during the cool-down. A share of them, stable per customer and campaign, is the holdout: they
walk the same steps and are sent nothing, so the results can compare.

A step is sent when it comes due, and only if the customer has not been back since they were
enrolled and consented to one of the step's channels. A purchase at the till ends the sequence
at once (the `balance_changed` receiver below) and marks the customer won back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from app.campaigns import delivery
from app.campaigns.events import customer_won_back
from app.campaigns.models import (
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignTarget,
    CustomerScore,
    CustomerStatus,
    Enrollment,
    EnrollmentState,
    ScoringRun,
    Segment,
)
from app.campaigns.segments import latest_scoring, segment_query
from app.db import rowcount, session_of
from app.loyalty.models import Customer, EntryKind, Program, Purchase, Reward

log = logging.getLogger(__name__)


def live_sequences(*, session: Session, program_id: int) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign)
            .where(
                Campaign.program_id == program_id,
                Campaign.kind == CampaignKind.reengagement,
                Campaign.state == CampaignState.scheduled,
            )
            .order_by(Campaign.id)
        )
    )


def enroll_lapsing(*, session: Session, campaign: Campaign, now: datetime, cooldown_days: int, limit: int) -> int:
    """Enrol up to `limit` newly lapsing customers; returns how many (call again until fewer)."""
    program = session.get_one(Program, campaign.program_id)
    as_of = latest_scoring(session=session, program_id=program.id)
    if as_of is None:
        return 0
    recent = Enrollment.enrolled_at > now - timedelta(days=cooldown_days)
    query = (
        select(CustomerScore.customer_id)
        .where(
            CustomerScore.program_id == program.id,
            CustomerScore.as_of == as_of,
            CustomerScore.status == CustomerStatus.lapsing,
            ~exists().where(
                Enrollment.customer_id == CustomerScore.customer_id,
                (Enrollment.state == EnrollmentState.active) | recent,
            ),
        )
        .order_by(CustomerScore.customer_id)
        .limit(limit)
    )
    if campaign.segment_id:
        rules = session.get_one(Segment, campaign.segment_id).rules
        query = query.where(
            CustomerScore.customer_id.in_(segment_query(session=session, program=program, rules=rules, now=now))
        )
    first_day = campaign.steps[0]["day"]
    ids = list(session.scalars(query))
    for customer_id in ids:
        session.add(
            Enrollment(
                campaign_id=campaign.id,
                customer_id=customer_id,
                enrolled_at=now,
                next_step=0,
                next_step_at=now + timedelta(days=first_day),
                state=EnrollmentState.active,
                holdout=delivery.in_holdout(
                    campaign_id=campaign.id, customer_id=customer_id, percent=campaign.holdout_percent
                ),
            )
        )
    session.flush()
    return len(ids)


def _returned_at(session: Session, enrollment: Enrollment, now: datetime) -> datetime | None:
    return session.scalar(
        select(Purchase.created_at)
        .where(
            Purchase.customer_id == enrollment.customer_id,
            Purchase.created_at > enrollment.enrolled_at,
            Purchase.created_at <= now,
            Purchase.amount > Purchase.refunded_amount,
        )
        .order_by(Purchase.created_at)
        .limit(1)
    )


def run_due_steps(*, session: Session, now: datetime, limit: int) -> int:
    """Send (or, for the holdout, record) every step due by `now`, up to `limit` of them."""
    due = session.scalars(
        select(Enrollment)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(
            Enrollment.state == EnrollmentState.active,
            Enrollment.next_step_at <= now,
            Campaign.state == CampaignState.scheduled,
        )
        .order_by(Enrollment.next_step_at, Enrollment.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Enrollment)
    ).all()
    campaigns: dict[int, Campaign] = {}
    for enrollment in due:
        campaign = campaigns.setdefault(enrollment.campaign_id, session.get_one(Campaign, enrollment.campaign_id))
        _advance(session=session, enrollment=enrollment, campaign=campaign, now=now)
    session.flush()
    return len(due)


def _advance(*, session: Session, enrollment: Enrollment, campaign: Campaign, now: datetime) -> None:
    returned = _returned_at(session, enrollment, now)
    if returned is not None:  # the till receiver normally got here first
        _won_back(enrollment, returned)
        return
    index = enrollment.next_step
    step = campaign.steps[index]
    target = CampaignTarget(
        campaign_id=campaign.id,
        enrollment_id=enrollment.id,
        step=index,
        customer_id=enrollment.customer_id,
        holdout=enrollment.holdout,
        targeted_at=now,
    )
    if not enrollment.holdout:
        _send_step(
            session=session,
            target=target,
            campaign=campaign,
            step=step,
            now=now,
            key=f"reengagement:{enrollment.id}:step:{index}",
        )
    session.add(target)
    enrollment.next_step = index + 1
    if enrollment.next_step < len(campaign.steps):
        enrollment.next_step_at = enrollment.enrolled_at + timedelta(days=campaign.steps[index + 1]["day"])
    else:
        enrollment.state, enrollment.ended_at, enrollment.next_step_at = EnrollmentState.completed, now, None


def _send_step(
    *, session: Session, target: CampaignTarget, campaign: Campaign, step: dict, now: datetime, key: str
) -> None:
    reward = session.get(Reward, campaign.reward_id) if campaign.reward_id else None
    context = delivery.variables(campaign_name=campaign.name, bonus_points=step["bonus_points"], reward=reward)
    channels = delivery.reachable(session, [target.customer_id], step["channels"])[target.customer_id]
    delivery.queue_target(
        session=session,
        target=target,
        campaign=campaign,
        channels=channels,
        templates=step["templates"],
        bonus=step["bonus_points"],
        context=context,
        key=key,
        now=now,
    )


def _won_back(enrollment: Enrollment, at: datetime) -> None:
    enrollment.state, enrollment.returned_at, enrollment.ended_at = EnrollmentState.won_back, at, at
    enrollment.next_step_at = None


def mark_returned(*, session: Session, customer: Customer, at: datetime) -> None:
    """A visit: the customer's sequence ends won back, and today's status says so before tonight."""
    session.execute(
        update(Enrollment)
        .where(Enrollment.customer_id == customer.id, Enrollment.state == EnrollmentState.active)
        .values(state=EnrollmentState.won_back, returned_at=at, ended_at=at, next_step_at=None)
        .execution_options(synchronize_session="fetch")
    )
    latest = (
        select(ScoringRun.as_of)
        .where(ScoringRun.program_id == customer.program_id)
        .order_by(ScoringRun.as_of.desc())
        .limit(1)
        .scalar_subquery()
    )
    returned = rowcount(
        session.execute(
            update(CustomerScore)
            .where(
                CustomerScore.program_id == customer.program_id,
                CustomerScore.customer_id == customer.id,
                CustomerScore.as_of == latest,
                CustomerScore.status.in_([CustomerStatus.lapsing, CustomerStatus.lapsed]),
            )
            .values(status=CustomerStatus.won_back)
            .execution_options(synchronize_session=False)
        )
    )
    if returned:
        customer_won_back.send(customer, at=at)


def visit_ends_sequences(customer: Customer, *, entry, **_) -> None:
    """Runs inside the till's transaction: only row updates, committed with the purchase."""
    if entry.kind is EntryKind.earn and entry.purchase_id is not None:
        mark_returned(session=session_of(customer), customer=customer, at=entry.created_at)
