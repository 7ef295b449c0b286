"""The stores a card shows as relevant places: the nearest ones to where its customer is.

Both wallets use it (Apple `locations` with relevantText, Google `merchantLocations`). Where the
customer is and what each store offers come from the geo domain, which registers its sources
here: wallets do not import geo.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.loyalty.models import Customer, Program, Purchase, Store

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
# Candidates ranked in SQL by a flat approximation, then exactly: enough slack for the
# approximation's error at city and country scale.
_CANDIDATE_FACTOR = 4


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine): within 0.5% of the ellipsoid, plenty for "nearby"."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# The geo domain tells us each store's active offer, for the lock-screen text (store id -> text).
OfferTexts = Callable[[Session, list[Store]], dict[int, str]]
_offer_texts: OfferTexts | None = None


def register_offer_texts(source: OfferTexts | None) -> None:
    global _offer_texts
    _offer_texts = source


# The geo domain tells us where the customer last was (within its retention period), if anywhere.
Position = Callable[[Session, int], tuple[float, float] | None]
_position: Position | None = None


def register_position_source(source: Position | None) -> None:
    global _position
    _position = source


def relevant_texts(*, session: Session, stores: list[Store]) -> dict[int, str]:
    """Per store, the relevantText of its active geofenced offer (none without the geo domain)."""
    return _offer_texts(session, stores) if _offer_texts is not None and stores else {}


def nearest_stores(
    *, session: Session, program: Program, latitude: float, longitude: float, limit: int = 10
) -> list[Store]:
    """The program's active stores nearest the point, nearest first."""
    # Equirectangular ordering needs only arithmetic, so SQLite and PostgreSQL both rank in SQL.
    squeeze = math.cos(math.radians(latitude))
    flat = (Store.latitude - latitude) * (Store.latitude - latitude) + ((Store.longitude - longitude) * squeeze) * (
        (Store.longitude - longitude) * squeeze
    )
    candidates = session.scalars(
        select(Store)
        .where(Store.program_id == program.id, Store.active.is_(True))
        .order_by(flat, Store.id)
        .limit(limit * _CANDIDATE_FACTOR)
    ).all()
    return sorted(candidates, key=lambda s: distance_m(latitude, longitude, s.latitude, s.longitude))[:limit]


def customer_reference_point(*, session: Session, program: Program, customer_id: int) -> tuple[float, float] | None:
    """Where the customer is likely to be: where they last shared their position (the card page's
    "Offers near me"), else their latest store, else the middle of the program's stores."""
    position = _position(session, customer_id) if _position is not None else None
    if position is not None:
        return position
    store = session.scalar(
        select(Store)
        .join(Purchase, Purchase.store_id == Store.id)
        .where(Purchase.customer_id == customer_id, Store.active.is_(True))
        .order_by(Purchase.created_at.desc(), Purchase.id.desc())
        .limit(1)
    )
    if store is not None:
        return store.latitude, store.longitude
    points = session.execute(
        select(Store.latitude, Store.longitude).where(Store.program_id == program.id, Store.active.is_(True))
    ).all()
    if not points:
        return None
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def nearby_places(*, session: Session, customer: Customer, limit: int = 10) -> list[tuple[Store, str | None]]:
    """The customer's nearest stores, nearest first, each with its open offer's text (or None)."""
    point = customer_reference_point(session=session, program=customer.program, customer_id=customer.id)
    if point is None:
        return []
    stores = nearest_stores(
        session=session, program=customer.program, latitude=point[0], longitude=point[1], limit=limit
    )
    texts = relevant_texts(session=session, stores=stores)
    return [(store, texts.get(store.id)) for store in stores]
