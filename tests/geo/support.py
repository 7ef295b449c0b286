"""What the geo tests share: offers, customers with the location opt-in, pings at a fixed
moment, and settings for a geocoder on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime

from geopy.distance import geodesic
from sqlalchemy import select

from app.geo import service
from app.geo.config import GeoSettings
from app.geo.schemas import GeoOfferCreate
from app.loyalty.models import Channel, Customer, Store
from app.loyalty.service import record_consents
from app.messaging.models import Message

SETTINGS = GeoSettings()
# A Monday in November: Los Angeles is on PST (UTC-8).
MONDAY_NOON_LA = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def offset(point: tuple[float, float], metres: float, bearing: float) -> tuple[float, float]:
    moved = geodesic(meters=metres).destination(point, bearing)
    return moved.latitude, moved.longitude


def make_offer(world, **fields) -> int:
    fields.setdefault("title", "Free cookie")
    fields.setdefault("body", "Show this at the till")
    fields.setdefault("radius_m", 100)
    with world.database.transaction() as session:
        offer = service.save_offer(
            session=session, program_id=world.program_id, body=GeoOfferCreate(**fields), settings=SETTINGS
        )
        return offer.id


def customer(world, *, location: bool = True, push: bool = True) -> int:
    customer_id = world.enroll("Ada Lovelace", consents={"push": push})["customer_id"]
    with world.database.transaction() as session:
        record_consents(
            session=session,
            customer=session.get(Customer, customer_id),
            consents={Channel.location: location},
            source="card-page",
            disclosure="Use my location to show offers near me.",
            ip_address=None,
        )
    return customer_id


def ping(
    world, customer_id: int, point: tuple[float, float], *, at: datetime = MONDAY_NOON_LA, accuracy: float = 0
) -> list[int]:
    with world.database.transaction() as session:
        _, deliveries = service.record_ping(
            session=session,
            customer_id=customer_id,
            latitude=point[0],
            longitude=point[1],
            accuracy_m=accuracy,
            settings=SETTINGS,
            now=at,
        )
        return [delivery.offer_id for delivery in deliveries]


def store_point(world, index: int = 0) -> tuple[float, float]:
    with world.database.transaction() as session:
        store = session.get(Store, world.store_ids[index])
        return store.latitude, store.longitude


def queued(world, customer_id: int) -> list[Message]:
    with world.database.transaction() as session:
        return list(
            session.scalars(
                select(Message).where(Message.customer_id == customer_id, Message.template.like("geo-offer:%"))
            )
        )


def geo_settings(domain: str, **extra) -> GeoSettings:
    return GeoSettings(
        geocoder="nominatim",
        nominatim_domain=domain,
        nominatim_scheme="http",
        geocoder_min_delay_seconds=0,
        geocoder_timeout_seconds=2,
        geocoder_user_agent="pointcard-tests/1.0",
        **extra,
    )
