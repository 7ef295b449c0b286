from __future__ import annotations

import enum
from datetime import datetime

from pydantic import AwareDatetime, Field, field_validator, model_validator

from app.geo import hours
from app.schemas import Input, Latitude, Longitude, Name, Output, TimeZone

LocalTime = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class OfferChannel(enum.StrEnum):
    push = "push"  # web push to the card page's subscriptions
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
    bonus_points: int | None = Field(default=None, ge=1, le=100_000)
    # A store fence's offer speaks only while the store is open (stores without hours count as open).
    only_while_open: bool = True
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
    only_while_open: bool
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
    bonus_points: int | None = Field(description="Points credited to the card with this offer.")
    reward_code: str | None = Field(description="The attached reward's code, to show at the till.")


class LocationPingResult(Output):
    recorded_at: datetime
    offers: list[MatchedOffer]


# --- stores -----------------------------------------------------------------------------------

OPENING_HOURS_DESCRIPTION = (
    'Weekly hours in the store\'s zone, e.g. {"mon": ["09:00-12:30", "14:00-19:00"]}; '
    "unlisted days are closed, an end before the start runs past midnight, "
    "null means not known (counted as open)."
)


class _StoreHours(Input):
    opening_hours: dict[str, list[str]] | None = Field(default=None, description=OPENING_HOURS_DESCRIPTION)

    @field_validator("opening_hours")
    @classmethod
    def _valid_hours(cls, value):
        return None if value is None else hours.validate(value)


class StoreCreate(_StoreHours):
    name: Name
    address: str = Field(default="", max_length=300)
    latitude: Latitude | None = Field(
        default=None, description="Omitted: the address is geocoded, if a geocoder is configured."
    )
    longitude: Longitude | None = None
    timezone: TimeZone

    @model_validator(mode="after")
    def _both_coordinates_or_neither(self) -> StoreCreate:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither (to geocode the address)")
        return self


class StoreUpdate(_StoreHours):
    name: Name | None = None
    address: str | None = Field(default=None, max_length=300)
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    timezone: TimeZone | None = None
    active: bool | None = None


class StoreRead(Output):
    id: int
    name: str
    address: str
    latitude: float
    longitude: float
    timezone: str
    opening_hours: dict[str, list[str]] | None
    active: bool
