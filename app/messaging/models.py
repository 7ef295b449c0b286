from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, str_enum, utcnow

if TYPE_CHECKING:
    from app.messaging.rules import Recipient


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
    # What goes out, already rendered with the customer's fields at enqueue.
    content: Mapped[dict] = mapped_column(JSON, default=dict)
    # Same key, same message: enqueueing twice (a job retried after a crash) adds nothing.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    # Marketing needs consent, quiet hours and caps; transactional (pass updates) does not.
    marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    # The consent channel a marketing message needs (sms, push, voice).
    consent_channel: Mapped[str | None] = mapped_column(String(24))
    state: Mapped[MessageState] = mapped_column(str_enum(MessageState), default=MessageState.queued)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_id: Mapped[str | None] = mapped_column(String(128), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    # Why it was suppressed or is waiting (no consent, quiet hours, cap).
    reason: Mapped[str | None] = mapped_column(String(300))
    # What providers told us along the way: subscriptions already pushed, AnsweredBy, segments.
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Set by the outbox on claimed rows (not stored): who the message goes to.
    __allow_unmapped__ = True
    recipient: Recipient | None = None

    __table_args__ = (
        Index("ix_messages_state_not_before", "state", "not_before"),
        Index("ix_messages_customer_sent", "customer_id", "sent_at"),
    )


class PushSubscription(Base):
    """A browser's Web Push subscription (PushSubscription.toJSON()) for one customer."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VoiceRecording(Base):
    """Audio for voicemail drops, kept in the database so every web node can serve it."""

    __tablename__ = "voice_recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The unguessable name in the public URL Twilio fetches.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(120), default="")
    content_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
