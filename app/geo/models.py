"""Geofenced offers, their prefilter rows, location pings and who got which offer when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow
from app.loyalty.models import LedgerEntry, Redemption


class GeoOffer(Base):
    __tablename__ = "geo_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text, default="")
    # A fence around each linked store, or around this point when no store is linked.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # The local time zone of a point offer's days and hours (a store fence uses its store's).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    radius_m: Mapped[float] = mapped_column(Float)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # ISO weekdays (1 = Monday); empty means every day.
    days: Mapped[list] = mapped_column(JSON, default=list)
    # Local "HH:MM" bounds, end exclusive; an end before the start runs over midnight.
    start_time: Mapped[str | None] = mapped_column(String(5))
    end_time: Mapped[str | None] = mapped_column(String(5))
    channels: Mapped[list] = mapped_column(JSON, default=list)
    cooldown_minutes: Mapped[int] = mapped_column(Integer, default=1440)
    reward_id: Mapped[int | None] = mapped_column(ForeignKey("rewards.id"))
    bonus_points: Mapped[int | None] = mapped_column(Integer)
    only_while_open: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    stores: Mapped[list[GeoOfferStore]] = relationship(cascade="all, delete-orphan")


class GeoOfferStore(Base):
    __tablename__ = "geo_offer_stores"

    offer_id: Mapped[int] = mapped_column(ForeignKey("geo_offers.id", ondelete="CASCADE"), primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id"), primary_key=True, index=True)


class GeoFence(Base):
    """Derived rows of the spatial prefilter (see fences.py); rebuilt whenever an offer changes."""

    __tablename__ = "geo_fences"
    __table_args__ = (Index("ix_geo_fences_band_lon", "band", "min_lon", "max_lon"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("geo_offers.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    band: Mapped[int] = mapped_column(Integer)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    min_lon: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    # The exact fence, for the geodesic test without another query.
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64))


class LocationPing(Base):
    """A raw position: personal data, deleted after the retention period (geo.jobs)."""

    __tablename__ = "location_pings"
    __table_args__ = (Index("ix_location_pings_customer_at", "customer_id", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class GeoOfferDelivery(Base):
    """An offer sent to a customer: the cooldown's memory (no position kept here)."""

    __tablename__ = "geo_offer_deliveries"
    __table_args__ = (Index("ix_geo_offer_deliveries_offer_customer", "offer_id", "customer_id", "delivered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("geo_offers.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id"))
    delivered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the offer gave with it, if anything: a ledger credit, a free reward.
    bonus_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"))

    offer: Mapped[GeoOffer] = relationship()
    bonus_entry: Mapped[LedgerEntry | None] = relationship()
    redemption: Mapped[Redemption | None] = relationship()
