"""Tables of the webhooks package: the endpoints admins register and each delivery to them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, str_enum, utcnow
from app.encryption import EncryptedJSON, EncryptedString


class EventType(enum.StrEnum):
    customer_enrolled = "customer.enrolled"
    points_changed = "points.changed"
    reward_redeemed = "reward.redeemed"
    tier_changed = "tier.changed"
    message_delivered = "message.delivered"
    customer_lapsing = "customer.lapsing"
    customer_lapsed = "customer.lapsed"
    customer_won_back = "customer.won_back"
    customer_erased = "customer.erased"
    # Sent by POST /api/v1/webhooks/{id}/test only; nobody subscribes to it.
    ping = "ping"


SUBSCRIBABLE = tuple(t for t in EventType if t is not EventType.ping)


class DeliveryState(enum.StrEnum):
    pending = "pending"  # not tried yet, or waiting for its next try
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # out of tries, refused for good (410, endpoint gone), or the address is refused


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(300), default="")
    # EventType values this endpoint receives.
    events: Mapped[list] = mapped_column(JSON, default=list)
    # Signs every delivery (HMAC-SHA256). Kept as is because signing needs it; shown once.
    # Encrypted at rest like contact data: whoever reads the database cannot forge our signatures.
    secret: Mapped[str] = mapped_column(EncryptedString("webhook_endpoints.secret"))
    # After a rotation the old secret also signs (a second v1) until this time, so receivers
    # can switch without dropping a delivery.
    previous_secret: Mapped[str | None] = mapped_column(EncryptedString("webhook_endpoints.previous_secret"))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why it was switched off by the service (the receiver answered 410 Gone).
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one endpoint, sent by the outbox ("webhook" channel) until it is 2xx."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Sent as Pointcard-Delivery: stable across retries, for the receiver to drop repeats.
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # The event's id (payload "id"): the same for every endpoint it goes to.
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(40))
    # Who the event is about, so a customer's erasure can find their deliveries (no FK: the
    # record of what was sent may outlive the row).
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Encrypted: an event carries its customer's name, e-mail and phone.
    payload: Mapped[dict] = mapped_column(EncryptedJSON("webhook_deliveries.payload"))
    state: Mapped[DeliveryState] = mapped_column(str_enum(DeliveryState), default=DeliveryState.pending)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_response: Mapped[str | None] = mapped_column(Text)  # the start of the body
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    endpoint: Mapped[WebhookEndpoint] = relationship()

    __table_args__ = (
        # One delivery per event and endpoint: a job re-run (tonight's scoring) adds nothing.
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )
