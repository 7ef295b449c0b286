from __future__ import annotations

import enum
from datetime import datetime

from pydantic import AwareDatetime, Field, model_validator

from app.schemas import Input, Latitude, Longitude, Name, Output, TimeZone

LocalTime = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class ConsentChannel(enum.StrEnum):
    """What the card page's toggles may change."""

    push = "push"
    sms = "sms"
    email = "email"
    location = "location"


class OfferChannel(enum.StrEnum):
    push = "push"      # web push to the card page's subscriptions
    sms = "sms"
    wallet = "wallet"  # a Google Wallet message on the saved card


class GeoOfferFields(Input):
    body: str = Field(default="", max_length=500)
    store_ids: list[int] = Field(default_factory=list)
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    timezone: TimeZone = "UTC"
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    days: list[int] = Field(default_factory=list)
    start_time: str | None = LocalTime
    end_time: str | None = LocalTime
    channels: list[OfferChannel] = Field(default_factory=lambda: [OfferChannel.push], min_length=1)
    cooldown_minutes: int = Field(default=1440, ge=0, le=525_600)
    reward_id: int | None = None
    bonus_points: int | None = Field(default=None, ge=1)
    active: bool = True


class GeoOfferCreate(GeoOfferFields):
    title: Name
    radius_m: float = Field(gt=0, le=50_000)

    @model_validator(mode="after")
    def _one_kind_of_fence(self) -> GeoOfferCreate:
        has_point = self.latitude is not None and self.longitude is not None
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        if bool(self.store_ids) == has_point:
            raise ValueError("give either store_ids or a point (latitude, longitude), not both or neither")
        if any(day not in range(1, 8) for day in self.days):
            raise ValueError("days are ISO weekdays, 1 (Monday) to 7 (Sunday)")
        if (self.start_time is None) != (self.end_time is None):
            raise ValueError("give both start_time and end_time, or neither")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class GeoOfferRead(Output):
    id: int
    title: str
    body: str
    store_ids: list[int]
    latitude: float | None
    longitude: float | None
    timezone: str
    radius_m: float
    starts_at: datetime | None
    ends_at: datetime | None
    days: list[int]
    start_time: str | None
    end_time: str | None
    channels: list[OfferChannel]
    cooldown_minutes: int
    reward_id: int | None
    bonus_points: int | None
    active: bool


class LocationPingCreate(Input):
    latitude: Latitude
    longitude: Longitude
    accuracy: float = Field(default=0, ge=0, le=100_000, description="Radius of uncertainty, metres")


class MatchedOffer(Output):
    id: int
    title: str
    body: str
    store_id: int | None


class LocationPingResult(Output):
    recorded_at: datetime
    offers: list[MatchedOffer]


class ConsentsUpdate(Input):
    """The card page's toggles: each channel sent is recorded with the text shown beside it."""

    consents: dict[ConsentChannel, bool] = Field(min_length=1)
    disclosure: str = Field(min_length=1, max_length=2000)


class ConsentsRead(Output):
    consents: dict[str, bool]
