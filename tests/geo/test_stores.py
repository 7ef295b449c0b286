"""Stores' places: opening hours, the store API with geocoding, fences that follow a moved store,
offers that give points or a reward, and wallet cards that list the stores near the customer."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.geo import hours, stores
from app.geo.geocoding import NominatimGeocoder
from app.geo.models import GeoFence
from app.geo.schemas import StoreCreate
from app.loyalty.models import Customer, EntryKind, LedgerEntry, Redemption, Reward, RewardKind, Store
from app.messaging.models import Message
from app.roles import Role
from app.wallet.google.models import GoogleWalletObject
from app.wallet.google.service import object_payload
from tests.geo.support import MONDAY_NOON_LA, customer, geo_settings, make_offer, offset, ping, queued, store_point

LA = "America/Los_Angeles"


@pytest.fixture
def settings_overrides(tmp_path):
    return {"google": {"issuer_id": "3388000000022001234", "certs_dir": tmp_path / "certs"}}


def utc_in(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def la_time(*args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(LA)).astimezone(UTC)


# --- opening hours --------------------------------------------------------------------------------


def test_hours_run_past_midnight_and_over_the_end_of_the_week():
    week = hours.validate({"sat": ["22:00-02:00"], "sun": ["23:00-01:00"], "mon": ["09:00-17:00"]})
    assert hours.is_open(week, LA, la_time(2026, 11, 28, 23, 0))  # Saturday night
    assert hours.is_open(week, LA, la_time(2026, 11, 29, 1, 59))  # ... into Sunday morning
    assert not hours.is_open(week, LA, la_time(2026, 11, 29, 2, 0))
    assert hours.is_open(week, LA, la_time(2026, 11, 30, 0, 30))  # Sunday night into Monday
    assert not hours.is_open(week, LA, la_time(2026, 11, 30, 1, 0))
    assert hours.is_open(week, LA, la_time(2026, 11, 30, 16, 59))
    assert not hours.is_open(week, LA, la_time(2026, 11, 30, 17, 0))  # closing time is exclusive
    assert not hours.is_open(week, "Asia/Tokyo", la_time(2026, 11, 30, 16, 0))  # read in the store's zone
    assert hours.is_open(None, LA, la_time(2026, 11, 30, 3, 0))  # unknown hours: open


@pytest.mark.parametrize(
    ("week", "why"),
    [
        ({"fri": ["20:00-02:00"], "sat": ["01:00-09:00"]}, "overlaps"),
        ({"mon": ["09:00-17:00", "16:00-18:00"]}, "overlaps"),
        ({"monday": ["09:00-17:00"]}, "unknown days"),
        ({"mon": ["9:00-17:00"]}, "not a time range"),
        ({"mon": ["09:00-09:00"]}, "same time"),
    ],
)
def test_overlapping_or_malformed_hours_are_refused(week, why):
    with pytest.raises(ValueError, match=why):
        hours.validate(week)


def test_the_csv_shorthand_reads_day_ranges_and_several_ranges_a_day():
    assert hours.parse_shorthand("Mo-Fr 08:00-12:00,13:00-18:00; Sa 10:00-16:00") == {
        **{day: ["08:00-12:00", "13:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
        "sat": ["10:00-16:00"],
    }
    assert hours.parse_shorthand("Fr-Mo 18:00-23:00") == {d: ["18:00-23:00"] for d in ("mon", "fri", "sat", "sun")}
    assert hours.parse_shorthand("  ") is None
    with pytest.raises(ValueError, match="not a day"):
        hours.parse_shorthand("Xx 09:00-17:00")


def test_import_keeps_hours_and_reports_bad_hours_by_line(world):
    csv = (
        "name,address,latitude,longitude,timezone,opening_hours\n"
        "Rivoli,,48.8556,2.3522,Europe/Paris,Mo-Sa 09:00-19:00\n"
        "Broken,,48.86,2.35,Europe/Paris,Mo 09:00-19:00; Mo 18:00-20:00\n"
    )
    with world.database.transaction() as session:
        report = stores.import_stores(
            session=session, program_id=world.program_id, rows=stores.read_rows(io.StringIO(csv)), geocoder=None
        )
        assert [line for line, _ in report.errors] == [3] and "overlaps" in report.errors[0][1]
        created = session.get(Store, report.created[0])
        assert created.opening_hours["sat"] == ["09:00-19:00"] and "sun" not in created.opening_hours


# --- the store API ----------------------------------------------------------------------------------


def test_stores_are_created_with_hours_and_need_coordinates_without_a_geocoder(world):
    admin = world.headers(Role.admin)
    created = world.client.post(
        "/api/v1/stores",
        headers=admin,
        json={
            "name": "Lloyd",
            "latitude": 45.53,
            "longitude": -122.65,
            "timezone": LA,
            "opening_hours": {"sun": ["10:00-16:00"], "mon": ["07:00-19:00"]},
        },
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["opening_hours"] == {"mon": ["07:00-19:00"], "sun": ["10:00-16:00"]}
    missing = world.client.post(
        "/api/v1/stores", headers=admin, json={"name": "Nowhere", "address": "1 Main St", "timezone": LA}
    )
    assert missing.status_code == 422 and missing.content_type == "application/problem+json"
    assert "no geocoder is configured" in missing.get_json()["detail"]
    bad = world.client.post(
        "/api/v1/stores",
        headers=admin,
        json={"name": "Odd", "latitude": 45.5, "longitude": -122.6, "timezone": LA, "opening_hours": {"mon": ["late"]}},
    )
    assert bad.status_code == 422 and "opening_hours" in str(bad.get_json())
    assert (
        world.client.post(
            "/api/v1/stores",
            headers=world.headers(Role.marketer),
            json={"name": "X", "latitude": 1, "longitude": 1, "timezone": LA},
        ).status_code
        == 403
    )


def test_a_store_without_coordinates_is_placed_by_the_geocoder(world, nominatim):
    geocoder = NominatimGeocoder(geo_settings(nominatim.domain))
    with world.database.transaction() as session:
        store = stores.create_store(
            session=session,
            program_id=world.program_id,
            geocoder=geocoder,
            body=StoreCreate(name="Rivoli", address="1 Rue de Rivoli, Paris", timezone="Europe/Paris"),
        )
        assert (store.latitude, store.longitude) == (48.8556, 2.3522)


# --- fences follow their store ------------------------------------------------------------------


def test_moving_a_store_moves_its_offers_fences_and_closing_it_drops_them(world):
    old_place = store_point(world)
    offer_id = make_offer(world, store_ids=[world.store_ids[0]], radius_m=150)
    customer_id = customer(world)
    new_place = offset(old_place, 3_000, 90)
    moved = world.client.patch(
        f"/api/v1/stores/{world.store_ids[0]}",
        headers=world.headers(Role.admin),
        json={"latitude": new_place[0], "longitude": new_place[1]},
    )
    assert moved.status_code == 200, moved.get_json()
    assert ping(world, customer_id, old_place) == []
    assert ping(world, customer_id, offset(new_place, 100, 0), at=MONDAY_NOON_LA + timedelta(minutes=1)) == [offer_id]
    closed = world.client.delete(f"/api/v1/stores/{world.store_ids[0]}", headers=world.headers(Role.admin))
    assert closed.status_code == 204
    with world.database.transaction() as session:
        assert session.scalars(select(GeoFence).where(GeoFence.offer_id == offer_id)).all() == []


def test_a_store_offer_speaks_only_while_the_store_is_open_unless_told_otherwise(world):
    with world.database.transaction() as session:
        session.get(Store, world.store_ids[0]).opening_hours = {"mon": ["07:00-11:00"]}
    centre = store_point(world)
    while_open = make_offer(world, store_ids=[world.store_ids[0]])
    any_time = make_offer(
        world, title="Any time", store_ids=[world.store_ids[0]], only_while_open=False, cooldown_minutes=525_600
    )
    customer_id = customer(world)
    assert ping(world, customer_id, centre) == [any_time]  # Monday noon: closed since 11:00
    assert ping(world, customer_id, centre, at=la_time(2026, 11, 30, 8, 0)) == [while_open]  # any_time cools down


# --- what an offer gives ----------------------------------------------------------------------------


def _reward(world, **fields) -> int:
    with world.database.transaction() as session:
        reward = Reward(
            program_id=world.program_id, name="Free cookie", kind=RewardKind.free_item, points_cost=500, **fields
        )
        session.add(reward)
        session.flush()
        return reward.id


def test_an_offer_credits_its_bonus_and_gives_its_reward_once_per_cooldown(world):
    reward_id = _reward(world)
    offer_id = make_offer(
        world, store_ids=[world.store_ids[0]], bonus_points=40, reward_id=reward_id, cooldown_minutes=60
    )
    customer_id = customer(world)
    token = world.token(Role.customer, customer_id=customer_id)
    centre = store_point(world)
    response = world.client.post(
        "/api/v1/me/location",
        headers={"Authorization": f"Bearer {token}"},
        json={"latitude": centre[0], "longitude": centre[1], "accuracy": 10},
    )
    assert response.status_code == 200, response.get_json()
    [offer] = response.get_json()["offers"]
    assert offer["id"] == offer_id and offer["bonus_points"] == 40
    with world.database.transaction() as session:
        redemption = session.scalar(select(Redemption).where(Redemption.customer_id == customer_id))
        assert redemption.code == offer["reward_code"] and redemption.points == 0
        assert redemption.store_id == world.store_ids[0]
        entries = session.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)).all()
        assert [(e.kind, e.points) for e in entries if e.kind is EntryKind.bonus][-1] == (EntryKind.bonus, 40)
        balance = session.get(Customer, customer_id).points_balance
        assert balance == sum(e.points for e in entries)  # the ledger and the cache agree
    assert redemption.code in queued(world, customer_id)[0].content["body"]
    assert ping(world, customer_id, centre, at=utc_in(31)) == []  # cooling down: nothing more given
    with world.database.transaction() as session:
        assert session.get(Customer, customer_id).points_balance == balance
        assert len(session.scalars(select(Redemption).where(Redemption.customer_id == customer_id)).all()) == 1


def test_an_offer_whose_reward_ran_out_is_still_sent_with_its_bonus(world):
    reward_id = _reward(world, stock=0)
    offer_id = make_offer(world, store_ids=[world.store_ids[0]], bonus_points=25, reward_id=reward_id)
    customer_id = customer(world)
    assert ping(world, customer_id, store_point(world)) == [offer_id]
    with world.database.transaction() as session:
        assert session.scalar(select(Redemption).where(Redemption.customer_id == customer_id)) is None
        assert session.get(Customer, customer_id).points_balance >= 25
    assert len(queued(world, customer_id)) == 1


# --- wallet cards list the stores near the customer --------------------------------------------


def test_the_wallet_cards_list_the_stores_nearest_where_the_customer_last_was(world):
    far_away = [(48.8566 + i * 0.01, 2.3522) for i in range(12)]  # a dozen stores in Paris
    with world.database.transaction() as session:
        session.add_all(
            Store(program_id=world.program_id, name=f"Paris {i}", latitude=lat, longitude=lon, timezone="Europe/Paris")
            for i, (lat, lon) in enumerate(far_away)
        )
    customer_id = customer(world)
    with world.database.transaction() as session:
        barcode = session.get(Customer, customer_id).card.barcode_token
    assert world.purchase(barcode, "5.00").status_code == 201  # at the Pearl District, Portland
    with world.database.transaction() as session:
        card = session.get(Customer, customer_id).card
        before = [loc["latitude"] for loc in _google_object(session, world, card)["merchantLocations"]]
    assert before[:3] == [45.5265, 45.559, 45.5121]  # no position yet: around their latest store
    ping(world, customer_id, (48.8566, 2.3522), at=datetime.now(UTC))
    with world.database.transaction() as session:
        card = session.get(Customer, customer_id).card
        document = _google_object(session, world, card)
        places = [(loc["latitude"], loc["longitude"]) for loc in document["merchantLocations"]]
        assert len(places) == 10 and places[0] == far_away[0] and set(places) <= set(far_away)


def _google_object(session, world, card) -> dict:
    return object_payload(session=session, card=card, wallet=world.app.extensions["pointcard"].google_wallet)


def test_moving_far_refreshes_the_customers_google_card_with_the_offer_near_them(world):
    customer_id = customer(world)
    with world.database.transaction() as session:
        card = session.get(Customer, customer_id).card
        session.add(
            GoogleWalletObject(
                card_id=card.id,
                object_id="x.card",
                inserted_in_google=True,
                in_wallet=True,
                version=0,
                notify_version=0,
                notified_version=0,
            )
        )
    make_offer(world, store_ids=[world.store_ids[1]], radius_m=150)
    alberta = store_point(world, 1)
    ping(world, customer_id, alberta, at=datetime.now(UTC))
    with world.database.transaction() as session:
        patches = session.scalars(
            select(Message).where(Message.customer_id == customer_id, Message.template == "google_wallet.patch_object")
        ).all()
        assert patches, "a move queues a patch of the customer's Google Wallet object"
        document = _google_object(session, world, session.get(Customer, customer_id).card)
        offers = [module for module in document["textModulesData"] if module["id"] == "offer"]
        assert offers and offers[0]["body"].endswith("Free cookie: Show this at the till")
