"""What this service knows of its Google Wallet classes and objects, and of Google's callbacks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.loyalty.models import Card, Program


class GoogleWalletClass(Base):
    """The LoyaltyClass of one program."""

    __tablename__ = "google_wallet_classes"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), unique=True)
    class_id: Mapped[str] = mapped_column(String(160), unique=True)
    inserted_in_google: Mapped[bool] = mapped_column(Boolean, default=False)
    # As Google last answered (UNDER_REVIEW, APPROVED, REJECTED); we always send UNDER_REVIEW.
    review_status: Mapped[str | None] = mapped_column(String(32))
    # sha256 of the payload last sent, so an unchanged design is not sent again.
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    program: Mapped[Program] = relationship()


class GoogleWalletObject(Base):
    """The LoyaltyObject of one card, created when its save link is first asked for.

    `version` counts changes worth sending; the sender records the version Google holds in
    `synced_version`, and the version whose change should notify in `notify_version`.
    """

    __tablename__ = "google_wallet_objects"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), unique=True)
    object_id: Mapped[str] = mapped_column(String(160), unique=True)
    inserted_in_google: Mapped[bool] = mapped_column(Boolean, default=False)
    # From Google's callbacks: is the card in the customer's wallet, and since when.
    in_wallet: Mapped[bool] = mapped_column(Boolean, default=False)
    saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=0)
    synced_version: Mapped[int | None] = mapped_column(Integer)
    notify_version: Mapped[int] = mapped_column(Integer, default=0)
    notified_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    card: Mapped[Card] = relationship()


class GoogleWalletNotification(Base):
    """One notifying update or message sent for an object: what the 3-per-24-hours cap counts."""

    __tablename__ = "google_wallet_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    object_row_id: Mapped[int] = mapped_column(ForeignKey("google_wallet_objects.id"))
    kind: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_google_wallet_notifications_object_sent", "object_row_id", "sent_at"),)


class GoogleWalletCallbackNonce(Base):
    """A callback already handled; kept until its message expires, when its expiry refuses it anyway."""

    __tablename__ = "google_wallet_callback_nonces"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(200), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
