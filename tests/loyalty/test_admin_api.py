"""Admin and marketer endpoints: stores, rewards, tiers, promotions, programme, customers."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.roles import Role


def test_store_crud_and_retirement(world):
    admin = world.headers(Role.admin)
    created = world.client.post(
        "/api/v1/stores",
        headers=admin,
        json={
            "name": "Lyon Part-Dieu",
            "address": "17 rue du Dr Bouchut",
            "latitude": 45.7605,
            "longitude": 4.8597,
            "timezone": "Europe/Paris",
        },
    )
    assert created.status_code == 201
    store = created.get_json()
    patched = world.client.patch(f"/api/v1/stores/{store['id']}", headers=admin, json={"name": "Lyon PD"})
    assert patched.get_json()["name"] == "Lyon PD" and patched.get_json()["latitude"] == 45.7605
    assert world.client.delete(f"/api/v1/stores/{store['id']}", headers=admin).status_code == 204
    assert world.client.get(f"/api/v1/stores/{store['id']}", headers=admin).get_json()["active"] is False
    bad = world.client.post(
        "/api/v1/stores",
        headers=admin,
        json={"name": "Nowhere", "latitude": 91, "longitude": -181, "timezone": "Europe/Paris"},
    )
    assert {e["field"] for e in bad.get_json()["errors"]} == {"latitude", "longitude"}


def test_reward_kinds_need_their_fields(world):
    marketer = world.headers(Role.marketer)
    for body, missing in (
        ({"kind": "gift_card"}, "value"),
        ({"kind": "charity_donation", "value": "5"}, "charity"),
        ({"kind": "tier_upgrade"}, "tier_id"),
        ({"kind": "discount"}, "percent_off"),
    ):
        response = world.client.post("/api/v1/rewards", headers=marketer, json={"name": "R", "points_cost": 10, **body})
        assert response.status_code == 422 and missing in response.get_json()["errors"][0]["message"]
    ok = world.client.post(
        "/api/v1/rewards",
        headers=marketer,
        json={
            "name": "10% off",
            "kind": "discount",
            "percent_off": 10,
            "points_cost": 200,
            "stock": 5,
            "active_from": "2025-01-01T00:00:00Z",
            "active_until": "2030-01-01T00:00:00+01:00",
        },
    )
    assert ok.status_code == 201 and ok.get_json()["stock"] == 5
    naive = world.client.post(
        "/api/v1/rewards",
        headers=marketer,
        json={"name": "x", "kind": "free_item", "points_cost": 1, "active_from": "2025-01-01T00:00:00"},
    )
    assert naive.get_json()["errors"][0]["field"] == "active_from"


def test_rewards_outside_their_window_are_not_offered_at_the_till(world):
    marketer = world.headers(Role.marketer)
    world.client.post(
        "/api/v1/rewards",
        headers=marketer,
        json={"name": "Future mug", "kind": "free_item", "points_cost": 10, "active_from": "2099-01-01T00:00:00Z"},
    )
    card = world.enroll()
    offered = {r["name"] for r in world.scan(card["barcode"]).get_json()["rewards"]}
    assert "Future mug" not in offered and "Free drip coffee" in offered


def test_programme_rules_change_what_a_purchase_earns(world):
    card = world.enroll()
    response = world.client.patch(
        "/api/v1/program", headers=world.headers(Role.admin), json={"points_per_unit": "2.5", "rounding": "ceil"}
    )
    assert response.status_code == 200 and Decimal(response.get_json()["points_per_unit"]) == Decimal("2.5")
    assert world.purchase(card["barcode"], "1.01").get_json()["points_earned"] == 3


def test_customers_are_found_and_adjusted_with_a_reason(world):
    card = world.enroll(email="ada@example.com", phone="+14155550123")
    marketer, admin = world.headers(Role.marketer), world.headers(Role.admin)
    for query in ("email=ADA@example.com", "phone=%2B14155550123", f"member_number={card['member_number']}"):
        found = world.client.get(f"/api/v1/customers?{query}", headers=marketer).get_json()
        assert [c["id"] for c in found] == [card["customer_id"]]
    url = f"/api/v1/customers/{card['customer_id']}/adjustments"
    first = world.client.post(
        url, headers={**admin, "Idempotency-Key": "adj-1"}, json={"points": 25, "reason": "coffee was cold"}
    )
    again = world.client.post(
        url, headers={**admin, "Idempotency-Key": "adj-1"}, json={"points": 25, "reason": "coffee was cold"}
    )
    assert first.status_code == again.status_code == 201 and first.get_json() == again.get_json()
    ledger = world.client.get(f"/api/v1/customers/{card['customer_id']}/ledger", headers=marketer).get_json()
    assert [(e["kind"], e["points"], e["reason"]) for e in ledger] == [
        ("adjust", 25, "coffee was cold"),
        ("bonus", 50, "signup bonus"),
    ]
    limited = world.client.get(f"/api/v1/customers/{card['customer_id']}/ledger?limit=0", headers=marketer)
    assert limited.status_code == 422 and limited.get_json()["errors"][0]["field"] == "limit"


def test_production_refuses_to_start_without_a_strong_secret():
    with pytest.raises(ValidationError, match="must be set in production"):
        Settings(env="production")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", secret_key="short")
