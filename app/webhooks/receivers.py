"""Domain events -> webhook deliveries, written in the transaction that caused them.

Loyalty, messaging and campaign events are collected on the session as they fire (their facts
copied at once: a later change in the same transaction does not rewrite an earlier event) and
turned into deliveries just before the transaction commits: one query finds the subscribed
endpoints for the whole transaction, and nothing is written when nobody subscribes. A rolled
back transaction sends nothing. The nightly scoring's lapses are found by comparing the new
scores with the previous day's, in SQL, and carry stable event ids, so a re-run adds nothing.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, SessionTransaction, aliased

from app.campaigns.models import CustomerScore, CustomerStatus
from app.db import session_of
from app.webhooks import service
from app.webhooks.models import EventType
from app.webhooks.service import Event

_PENDING = "webhooks.pending_events"
_MARKS = "webhooks.savepoint_marks"
# Nightly statuses that are events, and the event each one is.
STATUS_EVENTS = {
    CustomerStatus.lapsing: EventType.customer_lapsing,
    CustomerStatus.lapsed: EventType.customer_lapsed,
    CustomerStatus.won_back: EventType.customer_won_back,
}
CHUNK = 500


def _collect(instance, event_: Event) -> None:
    session = session_of(instance)
    if session is not None:
        session.info.setdefault(_PENDING, []).append(event_)


def _tier(tier) -> dict | None:
    return {"id": tier.id, "name": tier.name} if tier is not None else None


def enrolled(customer, **_) -> None:
    _collect(
        customer,
        Event(
            EventType.customer_enrolled,
            {"enrolled_at": customer.created_at.isoformat()},
            customer_id=customer.id,
            occurred_at=customer.created_at,
        ),
    )


def points_changed(customer, *, entry, previous_balance, **_) -> None:
    data = {
        "previous_balance": previous_balance,
        "balance": entry.balance_after,
        "entry": {
            "id": entry.id,
            "kind": str(entry.kind),
            "points": entry.points,
            "reason": entry.reason,
            "purchase_id": entry.purchase_id,
            "redemption_id": entry.redemption_id,
            "store_id": entry.store_id,
            "expires_at": entry.expires_at and entry.expires_at.isoformat(),
        },
    }
    _collect(customer, Event(EventType.points_changed, data, customer_id=customer.id, occurred_at=entry.created_at))


def tier_changed(customer, *, previous_tier, tier, **_) -> None:
    _collect(
        customer,
        Event(
            EventType.tier_changed,
            {"previous_tier": _tier(previous_tier), "tier": _tier(tier)},
            customer_id=customer.id,
        ),
    )


def reward_redeemed(customer, *, redemption, reward, **_) -> None:
    data = {
        "redemption": {
            "id": redemption.id,
            "code": redemption.code,
            "points": redemption.points,
            "store_id": redemption.store_id,
        },
        "reward": {"id": reward.id, "name": reward.name, "kind": str(reward.kind)},
    }
    _collect(
        customer, Event(EventType.reward_redeemed, data, customer_id=customer.id, occurred_at=redemption.created_at)
    )


def message_delivered(message, *, at, **_) -> None:
    if message.channel == service.CHANNEL:
        return  # our own deliveries are not news to the receiver
    data = {
        "message": {
            "id": message.id,
            "channel": message.channel,
            "template": message.template,
            "provider_id": message.provider_id,
            "delivered_at": at.isoformat(),
        }
    }
    _collect(message, Event(EventType.message_delivered, data, customer_id=message.customer_id, occurred_at=at))


def erased(customer, **_) -> None:
    # Receivers that keep a copy of the customer are told to erase theirs; the event names the
    # member by id and number only, and what we sent about them before is deleted here.
    service.forget_customer(session=session_of(customer), customer_id=customer.id)
    _collect(
        customer,
        Event(
            EventType.customer_erased,
            {"erased_at": customer.erased_at.isoformat()},
            customer_id=customer.id,
            occurred_at=customer.erased_at,
        ),
    )


def won_back(customer, *, at, **_) -> None:
    _collect(
        customer,
        Event(
            EventType.customer_won_back,
            {"status": str(CustomerStatus.won_back), "returned_at": at.isoformat()},
            customer_id=customer.id,
            occurred_at=at,
        ),
    )


def scores_written(session: Session, *, program_id: int, as_of: date, **_) -> None:
    endpoints = service.subscribers(session, STATUS_EVENTS.values())
    if not endpoints:
        return
    changes = status_changes(
        session, program_id=program_id, as_of=as_of, statuses=[s for s, t in STATUS_EVENTS.items() if t in endpoints]
    )
    batch = [
        Event(
            STATUS_EVENTS[status],
            {"status": str(status), "previous_status": previous and str(previous), "as_of": as_of.isoformat()},
            customer_id=customer_id,
            id=service.stable_event_id(STATUS_EVENTS[status], customer_id, as_of),
        )
        for customer_id, status, previous in changes
    ]
    for start in range(0, len(batch), CHUNK):
        service.queue_events(session=session, events=batch[start : start + CHUNK], endpoints=endpoints)


def status_changes(
    session: Session, *, program_id: int, as_of: date, statuses: list[CustomerStatus]
) -> list[tuple[int, CustomerStatus, CustomerStatus | None]]:
    """(customer, status, previous status) for each customer who entered one of `statuses` since the
    program's previous scores; nothing on the first night (no baseline, not a burst of old news)."""
    previous_day = session.scalar(
        select(func.max(CustomerScore.as_of)).where(CustomerScore.program_id == program_id, CustomerScore.as_of < as_of)
    )
    if previous_day is None or not statuses:
        return []
    today, before = aliased(CustomerScore), aliased(CustomerScore)
    rows = session.execute(
        select(today.customer_id, today.status, before.status)
        .outerjoin(
            before,
            and_(
                before.program_id == today.program_id,
                before.as_of == previous_day,
                before.customer_id == today.customer_id,
            ),
        )
        .where(
            today.program_id == program_id,
            today.as_of == as_of,
            today.status.in_(statuses),
            or_(before.status.is_(None), before.status != today.status),
        )
        .order_by(today.customer_id)
    )
    return [(customer_id, status, previous) for customer_id, status, previous in rows]


def write_deliveries(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        for start in range(0, len(pending), CHUNK):
            service.queue_events(session=session, events=pending[start : start + CHUNK])


def mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = len(session.info.get(_PENDING, ()))


def forget_on_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended; on commit the list is gone already
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)
    elif transaction.nested:
        # A released savepoint wrote its events at before_commit, which emptied the list; what is
        # still there past the mark fired inside a savepoint that was rolled back.
        mark = session.info.get(_MARKS, {}).pop(id(transaction), 0)
        del session.info.get(_PENDING, [])[mark:]
