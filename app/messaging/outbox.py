"""The outbox: enqueue inside a transaction; workers claim, send and settle after commit.

A claim is a lease: a worker that dies mid-send leaves rows in `sending` whose lease runs
out, and the next claim takes them again. Claims use FOR UPDATE SKIP LOCKED on PostgreSQL
so many workers never take the same row; SQLite's writes are serial anyway.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db import Database, utcnow
from app.messaging.models import Message, MessageState
from app.messaging.providers import RetryLater, Sender, Undeliverable

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 5


def enqueue(
    *, session: Session, customer_id: int | None, channel: str, content: dict, dedupe_key: str,
    template: str = "", not_before: datetime | None = None,
) -> None:
    """Add a message unless one with this dedupe key exists (then this is a no-op)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Message)
        .values(customer_id=customer_id, channel=channel, content=content, dedupe_key=dedupe_key,
                template=template, state=MessageState.queued, not_before=not_before or utcnow(),
                attempts=0, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )


def claim_batch(*, session: Session, limit: int, now: datetime) -> list[Message]:
    due = or_(
        (Message.state == MessageState.queued) & (Message.not_before <= now),
        (Message.state == MessageState.sending) & (Message.lease_until < now),
    )
    rows = session.scalars(
        select(Message).where(due).order_by(Message.not_before, Message.id).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.state, row.lease_until, row.attempts = MessageState.sending, now + LEASE, row.attempts + 1
    return list(rows)


def _settle(session: Session, message_id: int, outcome: Callable[[Message], None]) -> None:
    message = session.get(Message, message_id)
    if message is not None and message.state is MessageState.sending:
        outcome(message)


def drain_once(*, database: Database, senders: dict[str, Sender], batch_size: int = 50) -> int:
    """Claim one batch, send each, record each outcome. Returns how many were handled."""
    with database.transaction() as session:
        claimed = [(m.id, m) for m in claim_batch(session=session, limit=batch_size, now=utcnow())]
    for message_id, message in claimed:
        sender = senders.get(message.channel)
        try:
            if sender is None:
                raise Undeliverable(f"no sender for channel {message.channel!r}")
            provider_id = sender.send(message)
        except Exception as exc:  # any provider failure is recorded on the row, never lost
            log.warning("message %s failed: %s", message_id, exc)
            with database.transaction() as session:
                _settle(session, message_id, lambda m, exc=exc: _fail(m, exc))
            continue
        with database.transaction() as session:
            _settle(session, message_id, lambda m: _sent(m, provider_id))
    return len(claimed)


def _sent(message: Message, provider_id: str) -> None:
    message.state, message.provider_id, message.sent_at, message.lease_until = (
        MessageState.sent, provider_id, utcnow(), None)


def _fail(message: Message, error: Exception) -> None:
    message.error = f"{type(error).__name__}: {error}"[:2000]
    message.lease_until = None
    if isinstance(error, Undeliverable) or message.attempts >= MAX_ATTEMPTS:
        message.state = MessageState.failed
        return
    delay = 2 ** message.attempts * (0.5 + random.random())  # exponential, with jitter
    if isinstance(error, RetryLater) and error.retry_after is not None:
        delay = max(delay, error.retry_after)
    message.state = MessageState.queued
    message.not_before = utcnow() + timedelta(seconds=delay)
