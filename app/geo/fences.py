"""Fence geometry: the bounding boxes of the SQL prefilter and the exact geodesic test.

A fence is a circle (centre, radius) on the WGS84 ellipsoid. Its prefilter rows are
latitude/longitude boxes that contain the circle grown by the largest accuracy we accept, so
a point-in-box query never drops a fence the exact test would keep. Rows are split by 0.1
degree latitude band (an equality the index can seek on) and at the antimeridian; a box that
reaches a pole covers every longitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geopy.distance import geodesic

BAND_DEGREES = 0.1
# Shortest lengths of a degree on WGS84 (metres): of latitude (at the equator), and of
# longitude at latitude phi is at least this times cos(phi). Dividing by them over-estimates
# the box, which is the safe direction; the factor covers floating-point rounding.
MIN_METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON_AT_EQUATOR = 111_319.0
SAFETY = 1.001


@dataclass(frozen=True)
class Box:
    band: int
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float


def band_of(latitude: float) -> int:
    return math.floor(latitude / BAND_DEGREES)


def _longitude_ranges(longitude: float, half_width: float) -> list[tuple[float, float]]:
    if half_width >= 180:
        return [(-180.0, 180.0)]
    low, high = longitude - half_width, longitude + half_width
    if low < -180:  # across the antimeridian: one piece on each side
        return [(low + 360, 180.0), (-180.0, high)]
    if high > 180:
        return [(low, 180.0), (-180.0, high - 360)]
    return [(low, high)]


def boxes(latitude: float, longitude: float, reach_m: float) -> list[Box]:
    """Prefilter rows for everything within reach_m metres of the centre."""
    half_height = reach_m / MIN_METRES_PER_DEGREE_LAT * SAFETY
    min_lat, max_lat = max(latitude - half_height, -90.0), min(latitude + half_height, 90.0)
    poleward = max(abs(min_lat), abs(max_lat))
    if poleward >= 89.999:
        half_width = 180.0  # the circle may go over the pole: any longitude can be inside
    else:
        half_width = reach_m / (METRES_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(poleward))) * SAFETY
    return [
        Box(band, min_lat, max_lat, low, high)
        for band in range(band_of(min_lat), band_of(max_lat) + 1)
        for low, high in _longitude_ranges(longitude, half_width)
    ]


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance on WGS84 (Karney's algorithm, via geopy)."""
    return geodesic(a, b).meters


def reaches(*, centre: tuple[float, float], radius_m: float, point: tuple[float, float], accuracy_m: float) -> bool:
    """Whether the fix may be inside the fence: its circle of uncertainty touches the fence."""
    return distance_m(centre, point) - accuracy_m <= radius_m
