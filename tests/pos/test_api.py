"""The cashier API: scan, earn, redeem, refund; idempotency, velocity and barcode secrecy."""

import random
import uuid

import pytest
from sqlalchemy import func, select

from app.loyalty.models import Program, Purchase, Store
from app.roles import Role


@pytest.fixture
def settings_overrides():
    return {"max_purchases_per_card_per_hour": 100_000}


def _problem(response, status, slug=None):
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["detail"]
    if slug:
        assert body["type"].endswith("/" + slug)
    return body


def test_scan_shows_the_customer_and_what_they_can_redeem(world):
    card = world.enroll(email="ada@example.com")
    world.purchase(card["barcode"], "30.00")
    body = world.scan(card["barcode"]).get_json()
    assert body["first_name"] == "Ada" and body["member_number"] == card["member_number"]
    assert body["balance"] == 350 and body["tier"] == "Bronze"
    assert body["next_tier"] == "Silver" and body["points_to_next_tier"] == 200
    affordable = {r["name"]: r["affordable"] for r in body["rewards"]}
    assert affordable["Free drip coffee"] is True and affordable["$5 off"] is False


@pytest.mark.slow
def test_a_thousand_retried_purchases_earn_exactly_once_per_key(world):
    card = world.enroll()
    keys = [str(uuid.uuid4()) for _ in range(500)]
    attempts = keys * 2
    random.Random(7).shuffle(attempts)
    answers = {}
    for key in attempts:
        response = world.purchase(card["barcode"], "1.00", key=key)
        assert response.status_code == 201
        answers.setdefault(key, []).append(response.get_json())
    assert all(first == retry for first, retry in answers.values())  # a retry gets the first answer
    earned = [first["points_earned"] for first, _ in answers.values()]
    assert len({first["transaction_id"] for first, _ in answers.values()}) == len(keys)
    # Tiers raise the rate on the way (10, 12, then 15 a dollar), so sum what each sale earned.
    assert set(earned) == {10, 12, 15}
    assert world.balance(card["customer_id"]) == 50 + sum(earned)
    with world.database.transaction() as session:
        assert session.scalar(select(func.count(Purchase.id))) == len(keys)


def test_a_retry_is_marked_replayed_and_a_reused_key_with_another_body_is_refused(world):
    card = world.enroll()
    first = world.purchase(card["barcode"], "5.00", key="sale-1")
    again = world.purchase(card["barcode"], "5.00", key="sale-1")
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    _problem(world.purchase(card["barcode"], "6.00", key="sale-1"), 422, "idempotency-key-reused")
    assert world.balance(card["customer_id"]) == 100


def test_a_purchase_without_idempotency_key_is_refused(world):
    card = world.enroll()
    response = world.client.post(
        "/api/v1/pos/purchases",
        json={"barcode": card["barcode"], "amount": "1.00", "currency": "USD"},
        headers=world.headers(Role.cashier),
    )
    _problem(response, 400, "idempotency-key-missing")
    assert world.balance(card["customer_id"]) == 50


def test_forged_and_rotated_barcodes_are_unknown(world):
    card = world.enroll()
    _problem(world.scan("PC" + "A" * 26), 404, "card-not-found")
    _problem(world.scan(str(card["customer_id"])), 404, "card-not-found")
    rotated = world.client.post(
        f"/api/v1/customers/{card['customer_id']}/card/rotate", headers=world.headers(Role.admin)
    )
    assert rotated.status_code == 200
    new_barcode = rotated.get_json()["barcode"]
    assert new_barcode != card["barcode"]
    _problem(world.scan(card["barcode"]), 404, "card-not-found")
    _problem(world.purchase(card["barcode"], "1.00"), 404, "card-not-found")
    assert world.scan(new_barcode).get_json()["member_number"] == card["member_number"]


def test_redemption_spends_points_and_issues_a_code(world):
    card = world.enroll()
    world.purchase(card["barcode"], "30.00")
    response = world.redeem(card["barcode"], "Free drip coffee")
    assert response.status_code == 201
    body = response.get_json()
    assert body["balance"] == 50 and body["points_spent"] == 300 and len(body["code"]) == 14
    _problem(world.redeem(card["barcode"], "Free drip coffee"), 409, "insufficient-points")
    assert world.balance(card["customer_id"]) == 50


def test_out_of_stock_rewards_are_refused(world):
    card = world.enroll()
    world.client.patch(
        f"/api/v1/rewards/{world.reward_ids['Free drip coffee']}",
        json={"stock": 1},
        headers=world.headers(Role.marketer),
    )
    world.purchase(card["barcode"], "60.00")
    assert world.redeem(card["barcode"], "Free drip coffee").status_code == 201
    _problem(world.redeem(card["barcode"], "Free drip coffee"), 409, "reward-unavailable")
    assert world.balance(card["customer_id"]) == 350


def test_refunds_reverse_points_once_and_never_more_than_the_purchase(world):
    card = world.enroll()
    transaction_id = world.purchase(card["barcode"], "20.00").get_json()["transaction_id"]
    url = f"/api/v1/pos/purchases/{transaction_id}/refund"
    partial = world.client.post(url, json={"amount": "5.00"}, headers=world.headers(Role.cashier, "r-1"))
    assert partial.status_code == 201 and partial.get_json()["points_reversed"] == 50
    retried = world.client.post(url, json={"amount": "5.00"}, headers=world.headers(Role.cashier, "r-1"))
    assert retried.get_json() == partial.get_json()
    _problem(world.client.post(url, json={"amount": "15.01"}, headers=world.headers(Role.cashier, "r-2")), 422)
    rest = world.client.post(url, headers=world.headers(Role.cashier, "r-3"))
    assert rest.get_json()["points_reversed"] == 150 and rest.get_json()["balance"] == 50
    _problem(world.client.post(url, headers=world.headers(Role.cashier, "r-4")), 409)
    _problem(world.client.post("/api/v1/pos/purchases/999999/refund", headers=world.headers(Role.cashier, "r-5")), 404)


def test_a_cashier_earns_only_at_their_own_store(world):
    card = world.enroll()
    own, other = world.store_ids[0], world.store_ids[1]
    assert world.staff[Role.cashier].store_id == own
    _problem(world.purchase(card["barcode"], "1.00", store_id=other), 403)
    assert world.purchase(card["barcode"], "1.00", store_id=own).status_code == 201
    assert world.purchase(card["barcode"], "1.00", store_id=other, role=Role.admin).status_code == 201
    _problem(world.purchase(card["barcode"], "1.00", store_id=99_999, role=Role.admin), 404)
    with world.database.transaction() as session:  # another program's store is not this card's
        elsewhere = Program(name="Elsewhere", slug="elsewhere", currency="USD", points_per_unit=1, timezone="UTC")
        session.add(elsewhere)
        session.flush()
        foreign = Store(program_id=elsewhere.id, name="Far", latitude=0, longitude=0, timezone="UTC")
        session.add(foreign)
        session.flush()
        foreign_id = foreign.id
    body = _problem(world.purchase(card["barcode"], "1.00", store_id=foreign_id, role=Role.admin), 404)
    assert "this card's program" in body["detail"]


def test_wrong_currency_and_bad_amounts_are_clear_errors(world):
    card = world.enroll()
    body = _problem(
        world.client.post(
            "/api/v1/pos/purchases",
            json={"barcode": card["barcode"], "amount": "1.00", "currency": "EUR"},
            headers=world.headers(Role.cashier, "k1"),
        ),
        422,
    )
    assert "USD" in body["detail"]
    for amount in ("0", "-5", "1.234", "abc"):
        body = _problem(world.purchase(card["barcode"], amount), 422, "validation-error")
        assert body["errors"][0]["field"] == "amount"


class TestVelocity:
    @pytest.fixture
    def settings_overrides(self):
        return {"max_purchases_per_card_per_hour": 3, "max_points_per_transaction": 1000}

    def test_purchases_per_card_per_hour_are_capped(self, world, caplog):
        card = world.enroll()
        for _ in range(3):
            assert world.purchase(card["barcode"], "1.00").status_code == 201
        body = _problem(world.purchase(card["barcode"], "1.00"), 429, "velocity-limit")
        assert "3 purchases" in body["detail"]
        assert "velocity limit" in caplog.text
        assert world.balance(card["customer_id"]) == 80

    def test_points_per_transaction_are_capped(self, world, caplog):
        card = world.enroll()
        _problem(world.purchase(card["barcode"], "100.10"), 422, "points-limit")
        assert "points limit" in caplog.text
        assert world.purchase(card["barcode"], "100.00").status_code == 201
