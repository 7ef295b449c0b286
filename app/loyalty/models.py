"""The loyalty domain's tables. The ledger is append-only; balances and lots are derived caches."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from app.db import Base, UTCDateTime, str_enum, utcnow
from app.encryption import EncryptedString, blind_index


class Rounding(enum.StrEnum):
    floor = "floor"
    nearest = "nearest"
    ceil = "ceil"


class BarcodeFormat(enum.StrEnum):
    qr = "QR"
    pdf417 = "PDF417"
    aztec = "AZTEC"
    code128 = "CODE128"


class Channel(enum.StrEnum):
    sms = "sms"
    push = "push"
    voice = "voice"
    email = "email"
    location = "location"


class EntryKind(enum.StrEnum):
    earn = "earn"
    redeem = "redeem"
    refund = "refund"
    expire = "expire"
    adjust = "adjust"
    bonus = "bonus"


class RewardKind(enum.StrEnum):
    discount = "discount"
    free_item = "free_item"
    gift_card = "gift_card"
    charity_donation = "charity_donation"
    tier_upgrade = "tier_upgrade"


class CardStatus(enum.StrEnum):
    active = "active"
    closed = "closed"


class Program(Base):
    __tablename__ = "programs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    points_per_unit: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    rounding: Mapped[Rounding] = mapped_column(str_enum(Rounding), default=Rounding.floor)
    expiry_months: Mapped[int | None] = mapped_column(Integer)
    tier_window_days: Mapped[int] = mapped_column(Integer, default=365)
    signup_bonus: Mapped[int] = mapped_column(Integer, default=0)
    referrer_bonus: Mapped[int] = mapped_column(Integer, default=0)
    referee_bonus: Mapped[int] = mapped_column(Integer, default=0)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    barcode_format: Mapped[BarcodeFormat] = mapped_column(str_enum(BarcodeFormat), default=BarcodeFormat.qr)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tiers: Mapped[list[Tier]] = relationship(order_by="Tier.threshold", back_populates="program")


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float] = mapped_column()
    longitude: Mapped[float] = mapped_column()
    timezone: Mapped[str] = mapped_column(String(64))
    # Weekly hours in the store's zone (app/geo/hours.py); None: not known.
    opening_hours: Mapped[dict | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
    )


class Tier(Base):
    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # Qualifying points earned within the program's rolling window needed to hold this tier.
    threshold: Mapped[int] = mapped_column(Integer)
    multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 3), default=Decimal(1))
    benefits: Mapped[list] = mapped_column(JSON, default=list)

    program: Mapped[Program] = relationship(back_populates="tiers")

    __table_args__ = (
        UniqueConstraint("program_id", "threshold", name="uq_tiers_program_threshold"),
        CheckConstraint("threshold >= 0", name="threshold_nonnegative"),
        CheckConstraint("multiplier > 0", name="multiplier_positive"),
    )


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), default="")
    # Encrypted at rest; found through their blind indexes (app/encryption.py), set with them.
    email: Mapped[str | None] = mapped_column(EncryptedString("customers.email"))
    phone: Mapped[str | None] = mapped_column(EncryptedString("customers.phone"))
    email_index: Mapped[str | None] = mapped_column(String(64))
    phone_index: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    referral_code: Mapped[str] = mapped_column(String(16), unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    # Caches derived from the ledger, written only under the customer's row lock.
    points_balance: Mapped[int] = mapped_column(Integer, default=0)
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"))
    tier_override_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"))
    tier_override_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the customer asked to be forgotten: personal fields are gone, the ledger stays.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    program: Mapped[Program] = relationship()
    tier: Mapped[Tier | None] = relationship(foreign_keys=[tier_id])
    card: Mapped[Card] = relationship(back_populates="customer", uselist=False)

    __table_args__ = (
        # Index first: the same index serves lookups by number alone (an inbound STOP, staff search).
        UniqueConstraint("email_index", "program_id", name="uq_customers_program_email_index"),
        UniqueConstraint("phone_index", "program_id", name="uq_customers_program_phone_index"),
    )

    @validates("email", "phone")
    def _index_contact(self, key: str, value: str | None) -> str | None:
        setattr(self, f"{key}_index", blind_index(value, column=f"customers.{key}"))
        return value

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Card(Base):
    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    member_number: Mapped[str] = mapped_column(String(16), unique=True)
    # What the till scans; rotating it makes the old one unknown.
    barcode_token: Mapped[str] = mapped_column(String(64), unique=True)
    # The secret in the card page's URL; separate so a barcode seen at the till opens nothing.
    access_token: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[CardStatus] = mapped_column(str_enum(CardStatus), default=CardStatus.active)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="card")


class Consent(Base):
    """Append-only: the latest record per customer and channel is the customer's answer."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(64))
    disclosure: Mapped[str] = mapped_column(Text, default="")
    ip_address: Mapped[str | None] = mapped_column(String(45))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_consents_customer_channel", "customer_id", "channel", "id"),)


class Purchase(Base):
    __tablename__ = "purchases"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    cashier_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3))
    points_earned: Mapped[int] = mapped_column(Integer)
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))
    points_reversed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_purchases_customer_created", "customer_id", "created_at"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount <= amount", name="refund_within_amount"),
    )


class Reward(Base):
    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[RewardKind] = mapped_column(str_enum(RewardKind))
    points_cost: Mapped[int] = mapped_column(Integer)
    # None means unlimited.
    stock: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    active_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Kind-specific: money value (discount, gift card, donation), percent off, charity, tier.
    value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    percent_off: Mapped[int | None] = mapped_column(Integer)
    charity_name: Mapped[str | None] = mapped_column(String(120))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"))
    tier_days: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("points_cost > 0", name="cost_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_nonnegative"),
    )


class Redemption(Base):
    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    cashier_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    points: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    reward: Mapped[Reward] = relationship()


class Promotion(Base):
    """A points multiplier for a date window, optionally only at one store or for one tier."""

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 3))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("tiers.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("multiplier > 0", name="multiplier_positive"),
        CheckConstraint("ends_at > starts_at", name="window_ordered"),
    )


class Referral(Base):
    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # Unique: a customer is referred once, so the bonus can be paid once.
    referee_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rewarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    """One change of a customer's points, with its cause. Never updated or deleted."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[EntryKind] = mapped_column(str_enum(EntryKind))
    points: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200), default="")
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_ledger_entries_customer_created", "customer_id", "created_at"),
        CheckConstraint("points <> 0", name="points_nonzero"),
    )


class PointLot(Base):
    """Points from one credit still available to spend; debits draw the oldest lot first."""

    __tablename__ = "point_lots"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), unique=True)
    purchase_id: Mapped[int | None] = mapped_column(ForeignKey("purchases.id"))
    points: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_point_lots_customer_open", "customer_id", "remaining"),
        Index("ix_point_lots_expires_at", "expires_at"),
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_within_points"),
    )
