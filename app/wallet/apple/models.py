"""Issued Apple passes and the devices registered for their updates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.loyalty.models import Card


class ApplePass(Base):
    """The pass of one card: issued on its first download, rebuilt from the card on every request."""

    __tablename__ = "apple_passes"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), unique=True)
    # Random, not the card's id or member number: it appears in URLs the device calls.
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)
    # The shared secret of the pass and this service (Authorization: ApplePass <token>).
    authentication_token: Mapped[str] = mapped_column(String(64))
    # Microseconds since the epoch, strictly increasing per pass: what passesUpdatedSince compares.
    update_tag: Mapped[int] = mapped_column(BigInteger)
    # Last-Modified of the pass; each change moves it to a later second (HTTP dates have no fraction).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    card: Mapped[Card] = relationship()


class AppleDeviceRegistration(Base):
    """A device asking to hear about changes of one pass, and the push token to reach it."""

    __tablename__ = "apple_device_registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("apple_passes.id"), index=True)
    device_library_id: Mapped[str] = mapped_column(String(128))
    push_token: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    apple_pass: Mapped[ApplePass] = relationship()

    __table_args__ = (
        UniqueConstraint("device_library_id", "pass_id", name="uq_apple_device_registrations_device_pass"),
    )
