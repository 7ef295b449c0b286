"""What a campaign did: per send or sequence step, who was targeted, what the outbox made of it,
and whether the messaged came back more than the holdout did (with a 95% interval)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Interval, case, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from app.campaigns.models import Campaign, CampaignTarget, ScoringRun
from app.loyalty.models import Consent, Customer, EntryKind, LedgerEntry, Purchase, Redemption
from app.messaging.models import Message, MessageState

Z95 = 1.959964


def _plus_days(column, days: int, dialect: str):
    if dialect == "postgresql":
        return column + literal(timedelta(days=days), Interval())
    return func.strftime("%Y-%m-%d %H:%M:%f", column, f"+{days} days")


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return centre - half, centre + half


def uplift(returned: int, n: int, returned_holdout: int, n_holdout: int) -> dict | None:
    """Difference of return rates, Newcombe's hybrid score interval (good with small groups and 0%)."""
    if not n or not n_holdout:
        return None
    p1, p0 = returned / n, returned_holdout / n_holdout
    (l1, u1), (l0, u0) = wilson(returned, n), wilson(returned_holdout, n_holdout)
    difference = p1 - p0
    return {
        "difference": difference,
        "low": difference - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
        "high": difference + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2),
        "confidence": 0.95,
    }


def _outcomes(session: Session, campaign_id: int, days: int, reward_id: int | None) -> dict:
    """Per (step, holdout): customers, returned, spend, points, opt-outs, and redemptions (of the
    campaign's reward, if it has one) in the N days after targeting."""
    t = CampaignTarget
    end = _plus_days(t.targeted_at, days, session.get_bind().dialect.name)
    in_window = (
        Purchase.customer_id == t.customer_id,
        Purchase.created_at > t.targeted_at,
        Purchase.created_at <= end,
        Purchase.amount > Purchase.refunded_amount,
    )
    spend = select(func.coalesce(func.sum(Purchase.amount - Purchase.refunded_amount), 0)).where(*in_window)
    points = select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
        LedgerEntry.customer_id == t.customer_id,
        LedgerEntry.kind == EntryKind.earn,
        LedgerEntry.created_at > t.targeted_at,
        LedgerEntry.created_at <= end,
    )
    redeemed = select(func.count()).where(
        Redemption.customer_id == t.customer_id,
        Redemption.created_at > t.targeted_at,
        Redemption.created_at <= end,
        *([Redemption.reward_id == reward_id] if reward_id is not None else []),
    )
    before = aliased(Consent)
    opted_out = exists().where(  # a yes turned into a no after the message
        Consent.customer_id == t.customer_id,
        Consent.granted.is_(False),
        Consent.recorded_at > t.targeted_at,
        Consent.recorded_at <= end,
        exists().where(
            before.customer_id == Consent.customer_id,
            before.channel == Consent.channel,
            before.granted.is_(True),
            before.id < Consent.id,
        ),
    )
    rows = session.execute(
        select(
            t.step,
            t.holdout,
            func.count(),
            func.sum(case((exists().where(*in_window), 1), else_=0)),
            func.sum(spend.scalar_subquery()),
            func.sum(points.scalar_subquery()),
            func.sum(case((opted_out, 1), else_=0)),
            func.sum(redeemed.scalar_subquery()),
        )
        .where(t.campaign_id == campaign_id)
        .group_by(t.step, t.holdout)
    )
    cents = Decimal("0.01")  # SQLite sums money as floats: back to cents
    return {
        (step, holdout): (
            n,
            returned or 0,
            Decimal(str(spent or 0)).quantize(cents),
            int(earned or 0),
            opted or 0,
            int(redemptions or 0),
        )
        for step, holdout, n, returned, spent, earned, opted, redemptions in rows
    }


def _message_states(session: Session, campaign_id: int) -> dict:
    t = CampaignTarget
    states: dict = {}
    for step, state, reason, n in session.execute(
        select(t.step, Message.state, Message.reason, func.count())
        .join(Message, Message.id == t.message_id)
        .where(t.campaign_id == campaign_id)
        .group_by(t.step, Message.state, Message.reason)
    ):
        states.setdefault(step, []).append((MessageState(state), reason, n))
    for step, reason, n in session.execute(
        select(t.step, t.skip_reason, func.count())
        .where(t.campaign_id == campaign_id, t.skip_reason.is_not(None))
        .group_by(t.step, t.skip_reason)
    ):
        states.setdefault(step, []).append((None, reason, n))
    return states


NO_OUTCOME = (0, 0, Decimal("0.00"), 0, 0, 0)


def _group(outcome) -> dict:
    n, returned, spent, earned, _, redemptions = outcome
    return {
        "customers": n,
        "returned": returned,
        "return_rate": returned / n if n else None,
        "points_after": earned,
        "spend_after": str(spent),
        "redemptions_after": redemptions,
    }


def _step(step: int | None, day: int | None, outcomes: dict, states: list) -> dict:
    treatment, holdout = outcomes.get(False, NO_OUTCOME), outcomes.get(True, NO_OUTCOME)
    counts = dict.fromkeys(MessageState, 0)
    suppressed: dict[str, int] = {}
    for state, reason, n in states:
        if state is None or state is MessageState.suppressed:
            suppressed[reason or "unknown"] = suppressed.get(reason or "unknown", 0) + n
        if state is not None:
            counts[state] += n
    return {
        "step": step,
        "day": day,
        "targeted": treatment[0] + holdout[0],
        "held_out": holdout[0],
        "queued": counts[MessageState.queued] + counts[MessageState.sending],
        "sent": counts[MessageState.sent] + counts[MessageState.delivered],
        "delivered": counts[MessageState.delivered],
        "failed": counts[MessageState.failed],
        "suppressed": suppressed,
        "opted_out": treatment[4],
        "treatment": _group(treatment),
        "holdout": _group(holdout),
        "uplift": uplift(treatment[1], treatment[0], holdout[1], holdout[0]),
    }


def _add(a: tuple, b: tuple) -> tuple:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def campaign_results(*, session: Session, campaign: Campaign, days: int | None, now: datetime) -> dict:
    days = days or campaign.return_days
    outcomes = _outcomes(session, campaign.id, days, campaign.reward_id)
    states = _message_states(session, campaign.id)
    step_numbers = sorted({step for step, _ in outcomes} | set(states), key=lambda s: -1 if s is None else s)
    steps = [
        _step(
            step,
            campaign.steps[step]["day"] if step is not None and step < len(campaign.steps) else None,
            {holdout: value for (s, holdout), value in outcomes.items() if s == step},
            states.get(step, []),
        )
        for step in step_numbers
    ]
    # For a sequence the total counts customers once: each enrolment is judged from its first step.
    first = min((s for s in step_numbers if s is not None), default=None)
    total_outcomes: dict = {}
    for (step, holdout), value in outcomes.items():
        if campaign.steps and step != first:
            continue
        total_outcomes[holdout] = _add(total_outcomes.get(holdout, NO_OUTCOME), value)
    total = _step(None, None, total_outcomes, [item for items in states.values() for item in items])
    last_target = session.scalar(
        select(func.max(CampaignTarget.targeted_at)).where(CampaignTarget.campaign_id == campaign.id)
    )
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "kind": campaign.kind,
        "return_days": days,
        "window_complete": last_target is not None and last_target + timedelta(days=days) <= now,
        "total": total,
        "steps": steps,
    }


def score_trend(*, session: Session, program_id: int, since: date) -> dict:
    runs = list(
        session.scalars(
            select(ScoringRun)
            .where(ScoringRun.program_id == program_id, ScoringRun.as_of >= since, ScoringRun.finished_at.is_not(None))
            .order_by(ScoringRun.as_of)
        )
    )
    day = func.date(Customer.created_at)
    enrollments = session.execute(
        select(day, func.count())
        .where(Customer.program_id == program_id, Customer.created_at >= datetime.combine(since, time(), tzinfo=UTC))
        .group_by(day)
        .order_by(day)
    )
    return {
        "statuses": [{"as_of": run.as_of, "counts": run.counts} for run in runs],
        "enrollments": [
            {"day": value if isinstance(value, date) else date.fromisoformat(value), "customers": n}
            for value, n in enrollments
        ],
        "model": runs[-1].model if runs else {},
    }
