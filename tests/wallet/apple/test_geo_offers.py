"""Geofenced offers in Apple Wallet: the lock-screen text near a store, and pass updates."""

from __future__ import annotations

from app.geo.config import GeoSettings
from app.roles import Role
from app.wallet.jobs import refresh_wallet_cards
from tests.wallet.apple.support import issued, messages, pass_json, register, serials_url, url_path

BATCHES_OF_ONE = GeoSettings(wallet_refresh_batch_size=1)  # several committed batches, one card each
OFFER = {"title": "Free cookie", "body": "Show this at the till", "radius_m": 150}


def create_offer(world, **fields) -> dict:
    response = world.client.post("/api/v1/geo-offers", json={**OFFER, **fields}, headers=world.headers(Role.marketer))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def relevant_texts(world, card) -> dict[float, str]:
    document = pass_json(world.client.get(url_path(card["apple_pass_url"])).data)
    return {loc["latitude"]: loc["relevantText"] for loc in document["locations"]}


def test_the_pass_shows_the_open_offer_of_a_store_near_it(world):
    card = world.enroll(name="Ada Lovelace", email="ada@example.com")
    world.purchase(card["barcode"], "20.00")  # at the Pearl District
    create_offer(world, store_ids=[world.store_ids[0]])
    create_offer(
        world,
        title="Over",
        store_ids=[world.store_ids[1]],
        starts_at="2020-01-01T00:00:00Z",
        ends_at="2020-01-02T00:00:00Z",
    )
    texts = relevant_texts(world, card)
    assert texts[45.5265] == "Free cookie: Show this at the till"
    assert texts[45.559] == "Pointcard Coffee, Alberta is nearby"
    assert texts[45.5121] == "Pointcard Coffee, Hawthorne is nearby"  # its offer is over


def test_changing_offers_updates_the_passes(world):
    _card, serial, auth = issued(world, email="ada@example.com")
    assert register(world, serial, auth) == 201
    tag = world.client.get(serials_url()).get_json()["lastUpdated"]
    world.enroll("Grace Hopper")  # a card without a pass: the batches step over it
    before = len(messages(world))
    offer = create_offer(world, store_ids=[world.store_ids[0]])
    create_offer(world, title="Second", store_ids=[world.store_ids[1]])
    assert len(messages(world)) == before  # the request only asks for a refresh: a job fans it out
    assert refresh_wallet_cards(database=world.database, settings=BATCHES_OF_ONE) == 1  # one for both offers
    assert len(messages(world)) == before + 1  # one APNs push queued for the registered device
    updated = world.client.get(serials_url(), query_string={"passesUpdatedSince": tag})
    assert updated.status_code == 200 and updated.get_json()["serialNumbers"] == [serial]
    deleted = world.client.delete(f"/api/v1/geo-offers/{offer['id']}", headers=world.headers(Role.marketer))
    assert deleted.status_code == 204 and refresh_wallet_cards(database=world.database) == 1
    assert len(messages(world)) == before + 2 and refresh_wallet_cards(database=world.database) == 0
