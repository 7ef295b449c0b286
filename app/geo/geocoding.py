"""Addresses to coordinates for stores: geopy's Nominatim, politely rate-limited and cached.

Behind a small protocol so the import takes any geocoder; settings choose Nominatim or none.
"""

from __future__ import annotations

import functools
from typing import Protocol

from geopy.exc import GeocoderServiceError, GeocoderTimedOut, GeocoderUnavailable, GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim

from app.errors import Problem
from app.geo.config import GeoSettings


class GeocodingFailed(Problem):
    status, slug, title = 503, "geocoding-failed", "Geocoding failed"


class AddressNotFound(Problem):
    status, slug, title = 422, "address-not-found", "Address not found"


class Geocoder(Protocol):
    def locate(self, address: str) -> tuple[float, float]: ...


class NominatimGeocoder:
    def __init__(self, settings: GeoSettings) -> None:
        self._where = f"{settings.nominatim_scheme}://{settings.nominatim_domain}"
        client = Nominatim(
            user_agent=settings.geocoder_user_agent,
            domain=settings.nominatim_domain,
            scheme=settings.nominatim_scheme,
            timeout=settings.geocoder_timeout_seconds,
        )
        # No retries: a network that is down should say so at once, not after minutes.
        self._geocode = RateLimiter(
            client.geocode,
            min_delay_seconds=settings.geocoder_min_delay_seconds,
            max_retries=0,
            swallow_exceptions=False,
        )

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one geocoder per import run; repeats are common
    def locate(self, address: str) -> tuple[float, float]:
        try:
            found = self._geocode(address, exactly_one=True)
        except (GeocoderUnavailable, GeocoderTimedOut) as exc:
            raise GeocodingFailed(
                f"The geocoder at {self._where} cannot be reached (no network?): {exc}. "
                "Give the store's latitude and longitude instead."
            ) from exc
        except (GeocoderServiceError, GeopyError) as exc:
            raise GeocodingFailed(f"The geocoder at {self._where} refused the request: {exc}.") from exc
        if found is None:
            raise AddressNotFound(f"No place found for the address {address!r}.")
        return found.latitude, found.longitude


def geocoder_from(settings: GeoSettings) -> Geocoder | None:
    return NominatimGeocoder(settings) if settings.geocoder == "nominatim" else None
