from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, str_enum, utcnow


class MessageState(enum.StrEnum):
    queued = "queued"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    failed = "failed"
    suppressed = "suppressed"


class Message(Base):
    """One message in the outbox: written in the caller's transaction, sent after commit."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(64), default="")
    content: Mapped[dict] = mapped_column(JSON, default=dict)
    # Same key, same message: enqueueing twice (a job retried after a crash) adds nothing.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[MessageState] = mapped_column(
        str_enum(MessageState), default=MessageState.queued
    )
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_messages_state_not_before", "state", "not_before"),)
