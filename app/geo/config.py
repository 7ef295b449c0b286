from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class GeoSettings(BaseModel):
    """Geofenced offers and location pings: environment variables POINTCARD_GEO__<FIELD>."""

    # Raw positions are personal data: kept this long (for quiet-hours time zones), then deleted.
    ping_retention_hours: int = Field(default=24, ge=1)
    # A phone watching its position reports every few seconds; one ping per customer per this
    # many seconds is matched, the others are refused with 429.
    ping_min_interval_seconds: int = Field(default=20, ge=0)
    # A fix vaguer than this tells us nothing about which store is near: stored, never matched.
    # The prefilter boxes are grown by it when an offer is saved: after raising it, save the offers again.
    max_accuracy_m: float = Field(default=200.0, gt=0)
    # A customer whose position moves this far refreshes their wallet cards' nearby stores.
    wallet_refresh_distance_m: float = Field(default=5_000.0, gt=0)
    # After an offer changes, cards are refreshed by a job this many per transaction.
    wallet_refresh_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Upper bound on a fence's radius (it also bounds the prefilter's boxes).
    max_radius_m: float = Field(default=50_000.0, gt=0)

    # Store addresses without coordinates are geocoded only when a geocoder is chosen.
    geocoder: Literal["none", "nominatim"] = "none"
    # The Nominatim server addresses are geocoded with: the public one, or your own.
    # Nominatim's usage policy asks for an identifying user agent and at most one request a second.
    nominatim_domain: str = "nominatim.openstreetmap.org"
    # https, or http for a Nominatim on the local network.
    nominatim_scheme: Literal["https", "http"] = "https"
    # The user agent the geocoding requests identify the deployment by.
    geocoder_user_agent: str = "pointcard-store-import/1.0"
    # At least this long between two geocoding requests.
    geocoder_min_delay_seconds: float = Field(default=1.0, ge=0)
    # Timeout of one geocoding request.
    geocoder_timeout_seconds: float = Field(default=10.0, gt=0)
