"""Geofenced offers: fence edges, the prefilter, windows in the store's zone, cooldowns, consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.db import utcnow
from app.errors import Forbidden
from app.geo import fences, service
from app.geo.jobs import purge_location_pings
from app.geo.models import GeoFence, LocationPing
from app.roles import Role
from tests.geo.support import MONDAY_NOON_LA, SETTINGS, customer, make_offer, offset, ping, queued, store_point


def matches_at(world, point: tuple[float, float], *, accuracy: float = 0, at: datetime = MONDAY_NOON_LA) -> list[int]:
    with world.database.transaction() as session:
        return [
            m.offer.id
            for m in service.matching_offers(
                session=session,
                program_id=world.program_id,
                latitude=point[0],
                longitude=point[1],
                accuracy_m=accuracy,
                now=at,
                settings=SETTINGS,
            )
        ]


# --- geometry -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "centre",
    [
        (45.5265, -122.6842),
        (0.0, 0.0),
        (-33.9, 151.2),
        (78.22, 15.65),
        (89.95, 10.0),
        (-89.95, 0.0),
        (0.0, 179.9999),
        (0.0, -179.9999),
    ],
)
@pytest.mark.parametrize("bearing", [0, 45, 90, 180, 270])
def test_the_prefilter_boxes_hold_the_whole_circle(centre, bearing):
    # Any point on the circle (plus the accuracy margin) lies in one of the boxes.
    for reach in (50, 1_000, 40_000):
        edge = offset(centre, reach * 0.9999, bearing)
        assert any(
            box.band == fences.band_of(edge[0])
            and box.min_lat <= edge[0] <= box.max_lat
            and box.min_lon <= edge[1] <= box.max_lon
            for box in fences.boxes(*centre, reach)
        ), (reach, edge)


def test_a_box_over_the_antimeridian_is_split_and_one_over_the_pole_takes_every_longitude():
    split = fences.boxes(0.0, 179.9995, 500)
    assert {(box.min_lon, box.max_lon)[1] for box in split} >= {180.0}
    assert any(box.min_lon == -180.0 for box in split)
    polar = fences.boxes(89.995, 0.0, 1_000)
    assert all((box.min_lon, box.max_lon) == (-180.0, 180.0) for box in polar)


# --- matching at the edges ------------------------------------------------------------------------


@pytest.mark.parametrize("bearing", [0, 90, 225])
def test_a_metre_inside_matches_and_a_metre_outside_does_not(world, bearing):
    centre = store_point(world)
    offer_id = make_offer(world, store_ids=[world.store_ids[0]], radius_m=150)
    assert matches_at(world, offset(centre, 149, bearing)) == [offer_id]
    assert matches_at(world, offset(centre, 151, bearing)) == []
    # A fix 5 m vague, 153 m away, may be inside the fence; a fix 1 m vague may not.
    assert matches_at(world, offset(centre, 153, bearing), accuracy=5) == [offer_id]
    assert matches_at(world, offset(centre, 153, bearing), accuracy=1) == []


def test_a_fix_vaguer_than_the_limit_never_matches(world):
    centre = store_point(world)
    make_offer(world, store_ids=[world.store_ids[0]], radius_m=150)
    assert matches_at(world, centre, accuracy=SETTINGS.max_accuracy_m + 1) == []


def test_fences_across_the_antimeridian_match_from_both_sides(world):
    offer_id = make_offer(world, latitude=-17.0, longitude=179.9995, radius_m=300, timezone="Pacific/Fiji")
    assert matches_at(world, (-17.0, -179.9990)) == [offer_id]  # ~160 m east, over the line
    assert matches_at(world, (-17.0, -179.9950)) == []  # ~590 m east
    assert matches_at(world, (-17.0, 179.9980)) == [offer_id]


def test_high_latitude_fences(world):
    svalbard = (78.2232, 15.6267)
    offer_id = make_offer(world, latitude=svalbard[0], longitude=svalbard[1], radius_m=100)
    assert matches_at(world, offset(svalbard, 99, 90)) == [offer_id]
    assert matches_at(world, offset(svalbard, 101, 90)) == []
    # Near the pole the fence covers every longitude: across the pole is ~2.2 km away.
    polar_id = make_offer(world, latitude=89.99, longitude=0.0, radius_m=2_300)
    assert matches_at(world, (89.99, 180.0)) == [polar_id]
    assert matches_at(world, (89.99, -90.0)) == [polar_id]
    assert matches_at(world, (89.95, 180.0)) == []


def test_the_nearest_fence_of_a_multi_store_offer_names_the_store(world):
    offer_id = make_offer(world, store_ids=world.store_ids, radius_m=200)
    with world.database.transaction() as session:
        (match,) = service.matching_offers(
            session=session,
            program_id=world.program_id,
            latitude=store_point(world, 1)[0],
            longitude=store_point(world, 1)[1],
            accuracy_m=0,
            now=MONDAY_NOON_LA,
            settings=SETTINGS,
        )
    assert (match.offer.id, match.store_id) == (offer_id, world.store_ids[1])


# --- windows in the store's time zone -------------------------------------------------------------


def test_days_and_hours_are_the_stores_local_time(world):
    centre = store_point(world)  # Portland: America/Los_Angeles
    offer_id = make_offer(world, store_ids=[world.store_ids[0]], days=[1], start_time="09:00", end_time="17:00")
    assert matches_at(world, centre, at=datetime(2026, 11, 23, 16, 59, tzinfo=UTC)) == []  # 08:59 Mon
    assert matches_at(world, centre, at=datetime(2026, 11, 23, 17, 0, tzinfo=UTC)) == [offer_id]  # 09:00 Mon
    assert matches_at(world, centre, at=datetime(2026, 11, 24, 0, 59, tzinfo=UTC)) == [offer_id]  # 16:59 Mon
    # 01:00 UTC Tuesday is 17:00 Monday in Portland: closed by the hour, not by the UTC day.
    assert matches_at(world, centre, at=datetime(2026, 11, 24, 1, 0, tzinfo=UTC)) == []
    assert matches_at(world, centre, at=datetime(2026, 11, 24, 18, 0, tzinfo=UTC)) == []  # Tuesday


def test_a_window_over_midnight_belongs_to_the_day_it_opened(world):
    centre = store_point(world)
    offer_id = make_offer(world, store_ids=[world.store_ids[0]], days=[5], start_time="22:00", end_time="02:00")
    friday_late = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)  # Fri 23:30 in Portland
    saturday_early = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)  # Sat 01:30, Friday's night
    saturday_late = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)  # Sat 23:30
    assert matches_at(world, centre, at=friday_late) == [offer_id]
    assert matches_at(world, centre, at=saturday_early) == [offer_id]
    assert matches_at(world, centre, at=saturday_late) == []


def test_the_active_window_bounds_the_offer(world):
    centre = store_point(world)
    offer_id = make_offer(
        world, store_ids=[world.store_ids[0]], starts_at=MONDAY_NOON_LA, ends_at=MONDAY_NOON_LA + timedelta(hours=1)
    )
    assert matches_at(world, centre, at=MONDAY_NOON_LA - timedelta(seconds=1)) == []
    assert matches_at(world, centre, at=MONDAY_NOON_LA) == [offer_id]
    assert matches_at(world, centre, at=MONDAY_NOON_LA + timedelta(hours=1)) == []


def test_inactive_offers_do_not_match(world):
    make_offer(world, store_ids=[world.store_ids[0]], active=False)
    assert matches_at(world, store_point(world)) == []


# --- pings: consent, cooldown, the outbox ---------------------------------------------------------


def test_a_ping_inside_queues_the_offer_once_per_cooldown(world):
    customer_id = customer(world)
    offer_id = make_offer(world, store_ids=[world.store_ids[0]], channels=["push", "sms"], cooldown_minutes=60)
    centre = store_point(world)
    assert ping(world, customer_id, centre) == [offer_id]
    assert sorted(m.channel for m in queued(world, customer_id)) == ["push", "sms"]
    push = next(m for m in queued(world, customer_id) if m.channel == "push")
    assert push.marketing and push.content["title"] == "Free cookie"
    # Inside the cooldown nothing more is queued; after it, the offer comes again.
    assert ping(world, customer_id, centre, at=MONDAY_NOON_LA + timedelta(minutes=59)) == []
    assert len(queued(world, customer_id)) == 2
    assert ping(world, customer_id, centre, at=MONDAY_NOON_LA + timedelta(minutes=61)) == [offer_id]
    assert len(queued(world, customer_id)) == 4


def test_without_the_location_opt_in_a_ping_is_refused_and_not_kept(world):
    customer_id = customer(world, location=False)
    make_offer(world, store_ids=[world.store_ids[0]])
    with pytest.raises(Forbidden, match="location opt-in"):
        ping(world, customer_id, store_point(world))
    with world.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(LocationPing)) == 0
    assert queued(world, customer_id) == []


def test_the_location_endpoint(world):
    customer_id = customer(world)
    offer_id = make_offer(world, store_ids=[world.store_ids[0]])
    lat, lon = store_point(world)
    headers = world.headers(Role.customer, customer_id=customer_id)
    response = world.client.post(
        "/api/v1/me/location", json={"latitude": lat, "longitude": lon, "accuracy": 10}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    assert [offer["id"] for offer in response.get_json()["offers"]] == [offer_id]
    # A phone watching its position is throttled per customer.
    again = world.client.post("/api/v1/me/location", json={"latitude": lat, "longitude": lon}, headers=headers)
    assert again.status_code == 429 and again.mimetype == "application/problem+json"
    bad = world.client.post("/api/v1/me/location", json={"latitude": 91, "longitude": lon}, headers=headers)
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    staff = world.client.post(
        "/api/v1/me/location", json={"latitude": lat, "longitude": lon}, headers=world.headers(Role.marketer)
    )
    assert staff.status_code == 403


def test_the_location_endpoint_refuses_without_consent(world):
    customer_id = customer(world, location=False)
    lat, lon = store_point(world)
    response = world.client.post(
        "/api/v1/me/location",
        json={"latitude": lat, "longitude": lon},
        headers=world.headers(Role.customer, customer_id=customer_id),
    )
    assert response.status_code == 403 and response.mimetype == "application/problem+json"


def test_raw_positions_are_deleted_after_the_retention_period(world):
    customer_id = customer(world)
    now = utcnow()
    ping(world, customer_id, (10.0, 10.0), at=now - timedelta(hours=25))
    ping(world, customer_id, (10.0, 10.0), at=now - timedelta(hours=1))
    assert purge_location_pings(database=world.database, now=now, settings=SETTINGS) == 1
    with world.database.transaction() as session:
        assert service.last_location(session, customer_id) == (10.0, 10.0)
        assert session.scalar(select(func.count()).select_from(LocationPing)) == 1


# --- offer CRUD -----------------------------------------------------------------------------------


def test_staff_manage_offers_and_their_fences_follow(world):
    headers = world.headers(Role.marketer)
    body = {
        "title": "Happy hour",
        "body": "Half price",
        "store_ids": world.store_ids[:2],
        "radius_m": 120,
        "days": [1, 2],
        "start_time": "15:00",
        "end_time": "17:00",
        "channels": ["push", "wallet"],
    }
    created = world.client.post("/api/v1/geo-offers", json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    offer = created.get_json()
    assert offer["store_ids"] == world.store_ids[:2] and offer["channels"] == ["push", "wallet"]
    with world.database.transaction() as session:
        assert {f.store_id for f in session.scalars(select(GeoFence))} == set(world.store_ids[:2])
    replaced = world.client.put(
        f"/api/v1/geo-offers/{offer['id']}", json={**body, "store_ids": world.store_ids[2:]}, headers=headers
    )
    assert replaced.status_code == 200
    with world.database.transaction() as session:
        assert {f.store_id for f in session.scalars(select(GeoFence))} == set(world.store_ids[2:])
    assert [o["id"] for o in world.client.get("/api/v1/geo-offers", headers=headers).get_json()] == [offer["id"]]
    assert world.client.delete(f"/api/v1/geo-offers/{offer['id']}", headers=headers).status_code == 204
    assert world.client.get(f"/api/v1/geo-offers/{offer['id']}", headers=headers).status_code == 404
    with world.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(GeoFence)) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"latitude": 1.0, "longitude": 2.0},
        {"store_ids": []},
        {"days": [8]},
        {"start_time": "25:00", "end_time": "10:00"},
        {"radius_m": 0},
    ],
)
def test_invalid_offers_are_refused(world, change):
    body = {"title": "x", "store_ids": world.store_ids[:1], "radius_m": 100, **change}
    response = world.client.post("/api/v1/geo-offers", json=body, headers=world.headers(Role.admin))
    assert response.status_code == 422 and response.mimetype == "application/problem+json"


def test_cashiers_and_customers_may_not_manage_offers(world):
    body = {"title": "x", "store_ids": world.store_ids[:1], "radius_m": 100}
    assert world.client.post("/api/v1/geo-offers", json=body, headers=world.headers(Role.cashier)).status_code == 403
    customer_headers = world.headers(Role.customer, customer_id=customer(world))
    assert world.client.get("/api/v1/geo-offers", headers=customer_headers).status_code == 403


def test_the_card_page_records_each_consent_toggle(world):
    customer_id = customer(world, location=False, push=False)
    headers = world.headers(Role.customer, customer_id=customer_id)
    response = world.client.put(
        "/api/v1/me/consents",
        headers=headers,
        json={"consents": {"location": True, "push": True}, "disclosure": "Use my location to show offers near me."},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["consents"] | {"sms": None} == {
        "push": True,
        "location": True,
        "sms": None,
        "email": False,
        "voice": False,
    }
    off = world.client.put(
        "/api/v1/me/consents", headers=headers, json={"consents": {"push": False}, "disclosure": "Offers on this phone"}
    )
    assert off.get_json()["consents"]["push"] is False
    assert ping(world, customer_id, (1.0, 1.0)) == []  # the location opt-in now counts
    empty = world.client.put("/api/v1/me/consents", headers=headers, json={"consents": {"push": True}})
    assert empty.status_code == 422 and empty.mimetype == "application/problem+json"
    unknown = world.client.put(
        "/api/v1/me/consents", headers=headers, json={"consents": {"fax": True}, "disclosure": "x"}
    )
    assert unknown.status_code == 422
