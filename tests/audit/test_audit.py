"""The audit log: every staff change is one append-only record with who, when, where and what."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from app.audit.models import AuditRecord
from app.audit.service import REDACTED, audited_request
from app.db import utcnow
from app.loyalty.models import Reward
from app.roles import Principal, Role
from tests.campaigns.support import broadcast

BROWSER = "Mozilla/5.0 (Audit test)"


def audit(world, **filters) -> list[dict]:
    response = world.client.get("/api/v1/audit", query_string=filters, headers=world.headers(Role.admin))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def from_ip(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def count_records(world) -> int:
    with world.database.transaction() as session:
        return session.scalar(select(func.count()).select_from(AuditRecord))


def test_a_reward_edit_records_who_when_where_and_before_after(world):
    reward_id = next(iter(world.reward_ids.values()))
    before = world.client.get(f"/api/v1/rewards/{reward_id}", headers=world.headers(Role.marketer)).get_json()
    started = utcnow()
    response = world.client.patch(
        f"/api/v1/rewards/{reward_id}",
        json={"points_cost": before["points_cost"] + 5, "name": before["name"]},
        headers={**world.headers(Role.marketer), "User-Agent": BROWSER},
        **from_ip("198.51.100.7"),
    )
    assert response.status_code == 200, response.get_json()

    [record] = audit(world, entity_type="reward", entity_id=str(reward_id))
    marketer = world.staff[Role.marketer]
    assert record["action"] == "reward.update"
    assert (record["actor_id"], record["actor_email"], record["actor_role"]) == (
        marketer.id,
        marketer.email,
        "marketer",
    )
    assert (record["ip_address"], record["user_agent"]) == ("198.51.100.7", BROWSER)
    assert (record["method"], record["path"]) == ("PATCH", f"/api/v1/rewards/{reward_id}")
    # Only what changed: the name was sent unchanged and is not listed.
    assert record["changes"] == {"points_cost": [before["points_cost"], before["points_cost"] + 5]}
    assert started - timedelta(seconds=1) <= _parse(record["at"]) <= utcnow()


def _parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)


def test_a_points_adjustment_records_the_entry_and_the_balance_in_one_request(world):
    card = world.enroll()
    url = f"/api/v1/customers/{card['customer_id']}/adjustments"
    headers = world.headers(Role.admin, "adjust-1")
    assert world.client.post(url, json={"points": 40, "reason": "coffee was cold"}, headers=headers).status_code == 201

    records = audit(world, entity_type="ledger_entry")
    assert [r["action"] for r in records] == ["ledger_entry.create"]
    entry = records[0]["changes"]
    assert entry["kind"] == [None, "adjust"] and entry["points"] == [None, 40]
    assert entry["reason"] == [None, "coffee was cold"]
    assert entry["staff_user_id"] == [None, world.staff[Role.admin].id]
    [balance] = audit(world, entity_type="customer", request_id=records[0]["request_id"])
    assert balance["changes"]["points_balance"] == [card["balance"], card["balance"] + 40]
    # Derived rows (point lots) and the idempotency key are not audited on their own.
    assert not audit(world, entity_type="point_lot") and not audit(world, entity_type="idempotency_key")

    total = count_records(world)
    replay = world.client.post(url, json={"points": 40, "reason": "coffee was cold"}, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert count_records(world) == total


def test_a_role_change_is_audited_and_the_old_token_stops_working(world):
    cashier = world.staff[Role.cashier]
    old_token = world.headers(Role.cashier)
    response = world.client.patch(
        f"/api/v1/users/{cashier.id}", json={"role": "marketer"}, headers=world.headers(Role.admin)
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "id": cashier.id,
        "email": cashier.email,
        "role": "marketer",
        "store_id": None,
        "active": True,
    }
    [record] = audit(world, action="staff_user.update")
    assert record["entity_id"] == str(cashier.id) and record["actor_id"] == world.staff[Role.admin].id
    assert record["changes"] == {"role": ["cashier", "marketer"], "store_id": [cashier.store_id, None]}
    assert world.client.post("/api/v1/pos/scan", json={"barcode": "PCX"}, headers=old_token).status_code == 401


def test_the_last_admin_cannot_be_demoted_and_a_refused_change_leaves_no_record(world):
    admin = world.staff[Role.admin]
    response = world.client.patch(
        f"/api/v1/users/{admin.id}", json={"active": False}, headers=world.headers(Role.admin)
    )
    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    bad = world.client.patch(
        f"/api/v1/users/{world.staff[Role.marketer].id}", json={"role": "cashier"}, headers=world.headers(Role.admin)
    )
    assert bad.status_code == 422  # a cashier needs a store
    assert count_records(world) == 0


def test_a_rolled_back_change_leaves_no_record_and_a_committed_one_always_has_it(world):
    """The records are written on the change's own connection, in its transaction."""
    admin = world.staff[Role.admin]
    principal = Principal(role=Role.admin, user_id=admin.id)
    settings = world.app.extensions["pointcard"].settings.audit
    reward_id = next(iter(world.reward_ids.values()))
    with world.app.test_request_context("/api/v1/rewards", method="PATCH"):
        # The request fails after the flush: raised inside, so the transaction rolls back.
        with (
            pytest.raises(RuntimeError),
            world.database.transaction() as session,
            audited_request(session=session, principal=principal, actor_email=None, settings=settings),
        ):
            session.get(Reward, reward_id).points_cost = 1
            session.flush()
            assert session.scalar(select(func.count()).select_from(AuditRecord)) == 1
            raise RuntimeError("the request fails after the flush")
        assert count_records(world) == 0
        # As in @endpoint, the scope encloses the commit, whose flush writes the change.
        session = world.database.session_factory()
        with audited_request(session=session, principal=principal, actor_email=None, settings=settings):
            session.get(Reward, reward_id).points_cost = 2
            session.commit()
        session.close()
        [record] = audit(world, entity_type="reward")
        assert record["changes"]["points_cost"][1] == 2


def test_secrets_and_contact_data_are_recorded_as_changed_never_by_value(world):
    card = world.enroll(email="ada@example.com", phone="+14155550123")
    rotated = world.client.post(
        f"/api/v1/customers/{card['customer_id']}/card/rotate", headers=world.headers(Role.admin)
    )
    assert rotated.status_code == 200
    created = world.client.post(
        "/api/v1/users",
        json={"email": "new.admin@example.com", "password": "a-long-password", "role": "admin"},
        headers=world.headers(Role.admin),
    )
    assert created.status_code == 201

    [card_change] = audit(world, entity_type="card")
    assert card_change["changes"]["barcode_token"] == [REDACTED, REDACTED]
    assert card_change["changes"]["updated_at"][1] is not None  # what is not secret is shown
    [user] = audit(world, action="staff_user.create")
    assert user["changes"]["password_hash"] == [None, REDACTED]
    assert user["changes"]["email"] == [None, REDACTED] and user["changes"]["role"] == [None, "admin"]

    everything = json.dumps(audit(world))
    for secret in (
        card["barcode"],
        rotated.get_json()["barcode"],
        "a-long-password",
        "new.admin@example.com",
        card["card_url"].rsplit("/", 1)[1],
        "ada@example.com",
        "4155550123",
    ):
        assert secret not in everything


def test_the_database_refuses_to_change_or_delete_audit_records(world):
    world.client.patch(
        f"/api/v1/rewards/{next(iter(world.reward_ids.values()))}",
        json={"points_cost": 7},
        headers=world.headers(Role.admin),
    )
    assert count_records(world) == 1
    for statement in ("UPDATE audit_records SET action = 'nothing'", "DELETE FROM audit_records"):
        with pytest.raises(DatabaseError, match="append-only"), world.database.transaction() as session:
            session.execute(text(statement))
    assert audit(world)[0]["action"] == "reward.update"


def test_scheduling_a_campaign_is_recorded_with_its_state_change(world):
    headers = world.headers(Role.marketer)
    campaign = world.client.post("/api/v1/campaigns", json=broadcast(), headers=headers).get_json()
    assert world.client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", headers=headers).status_code == 200

    records = audit(world, entity_type="campaign", entity_id=str(campaign["id"]))
    assert [r["action"] for r in records] == ["campaign.update", "campaign.create"]
    assert records[0]["endpoint"] == "campaigns.schedule_campaign"
    assert records[0]["changes"]["state"] == ["draft", "scheduled"]
    assert records[1]["changes"]["name"] == [None, "Spring"]


def test_till_sales_are_left_to_the_ledger_but_refunds_are_audited(world):
    card = world.enroll()
    sale = world.purchase(card["barcode"], "12.00")
    assert sale.status_code == 201
    assert count_records(world) == 0
    refund = world.client.post(
        f"/api/v1/pos/purchases/{sale.get_json()['transaction_id']}/refund",
        headers=world.headers(Role.cashier, "refund-1"),
    )
    assert refund.status_code == 201, refund.get_json()
    actions = {r["action"] for r in audit(world)}
    assert {"purchase.update", "ledger_entry.create", "customer.update"} <= actions
    assert {r["actor_role"] for r in audit(world)} == {"cashier"}


def test_a_consent_recorded_by_staff_is_audited_with_who_and_what_was_said(world):
    card = world.enroll()
    response = world.client.put(
        f"/api/v1/customers/{card['customer_id']}/consents",
        json={"consents": {"sms": False}, "disclosure": "Read out: we will stop texting you."},
        headers=world.headers(Role.marketer),
        **from_ip("198.51.100.20"),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["consents"]["sms"] is False
    [record] = audit(world, action="consent.create")
    changes = record["changes"]
    assert changes["channel"] == [None, "sms"] and changes["granted"] == [None, False]
    assert changes["source"] == [None, f"staff:{world.staff[Role.marketer].id}"]
    assert changes["customer_id"] == [None, card["customer_id"]]
    assert record["ip_address"] == "198.51.100.20" and record["actor_role"] == "marketer"
    assert (
        world.client.put(
            "/api/v1/customers/999999/consents",
            json={"consents": {"sms": True}, "disclosure": "x"},
            headers=world.headers(Role.marketer),
        ).status_code
        == 404
    )


def test_customers_own_changes_are_not_staff_actions(world):
    card = world.enroll()
    response = world.client.put(
        "/api/v1/me/consents",
        json={"consents": {"push": True}, "disclosure": "Send me offers."},
        headers=world.headers(Role.customer, customer_id=card["customer_id"]),
    )
    assert response.status_code < 300, response.get_json()
    assert count_records(world) == 0


def test_reading_campaign_results_is_recorded_as_an_export(world):
    headers = world.headers(Role.marketer)
    campaign = world.client.post("/api/v1/campaigns", json=broadcast(), headers=headers).get_json()
    results = world.client.get(f"/api/v1/campaigns/{campaign['id']}/results", headers=headers)
    assert results.status_code == 200, results.get_json()
    [export] = audit(world, action="campaign.export")
    assert export["entity_id"] == str(campaign["id"]) and export["method"] == "GET"
    assert export["actor_id"] == world.staff[Role.marketer].id and export["changes"] is None


class TestExports:
    @pytest.fixture
    def settings_overrides(self):
        from app.audit.config import AuditSettings

        return {"audit": AuditSettings(exports={"loyalty.customer_ledger": "customer"})}

    def test_an_export_is_recorded_and_a_failed_one_is_not(self, world):
        card = world.enroll()
        headers = {**world.headers(Role.marketer), "User-Agent": BROWSER}
        ledger = world.client.get(
            f"/api/v1/customers/{card['customer_id']}/ledger?limit=5", headers=headers, **from_ip("203.0.113.9")
        )
        assert ledger.status_code == 200
        assert world.client.get("/api/v1/customers/999999/ledger", headers=headers).status_code == 404
        [export] = audit(world)
        assert export["action"] == "customer.export" and export["entity_id"] == str(card["customer_id"])
        assert export["details"] == {"query": ["limit"]}
        assert (export["ip_address"], export["user_agent"]) == ("203.0.113.9", BROWSER)


def test_the_log_is_filtered_and_paged(world):
    admin, marketer = world.headers(Role.admin), world.headers(Role.marketer)
    reward_ids = list(world.reward_ids.values())
    world.client.patch(f"/api/v1/rewards/{reward_ids[0]}", json={"points_cost": 11}, headers=marketer)
    middle = utcnow()
    world.client.patch(f"/api/v1/rewards/{reward_ids[1]}", json={"points_cost": 12}, headers=admin)
    world.client.patch(f"/api/v1/stores/{world.store_ids[0]}", json={"name": "Renamed"}, headers=admin)

    assert [r["entity_type"] for r in audit(world)] == ["store", "reward", "reward"]
    assert [r["entity_id"] for r in audit(world, actor_id=world.staff[Role.marketer].id)] == [str(reward_ids[0])]
    assert len(audit(world, action="reward.")) == 2 and len(audit(world, action="reward.update")) == 2
    assert audit(world, action="reward") == []  # exact unless it ends with "."
    assert [r["entity_type"] for r in audit(world, since=middle.isoformat())] == ["store", "reward"]
    assert [r["entity_id"] for r in audit(world, until=middle.isoformat())] == [str(reward_ids[0])]
    assert [r["entity_type"] for r in audit(world, limit=1, offset=1)] == ["reward"]
    naive = world.client.get("/api/v1/audit?since=2026-01-01T00:00:00", headers=admin)
    assert naive.status_code == 422
    assert world.client.get("/api/v1/audit", headers=marketer).status_code == 403


def test_the_audit_log_is_in_the_openapi_document(world):
    document = world.client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/audit"]["get"]
    assert operation["x-roles"] == ["admin"]
    assert {p["name"] for p in operation["parameters"]} >= {
        "actor_id",
        "action",
        "entity_type",
        "entity_id",
        "since",
        "until",
        "limit",
        "offset",
    }
    assert "patch" in document["paths"]["/api/v1/users/{user_id}"]


def test_a_unique_uuid_groups_one_requests_records(world):
    card = world.enroll()
    world.client.post(
        f"/api/v1/customers/{card['customer_id']}/adjustments",
        json={"points": 5, "reason": "first fix"},
        headers=world.headers(Role.admin, str(uuid.uuid4())),
    )
    world.client.post(
        f"/api/v1/customers/{card['customer_id']}/adjustments",
        json={"points": 6, "reason": "second fix"},
        headers=world.headers(Role.admin, str(uuid.uuid4())),
    )
    ids = {r["request_id"] for r in audit(world)}
    assert len(ids) == 2 and all(uuid.UUID(i) for i in ids)


def test_staff_created_at_the_command_line_are_audited_and_the_log_reads_there_too(world):
    runner = world.app.test_cli_runner()
    created = runner.invoke(
        args=["users", "create", "--role", "marketer", "--email", "m2@example.com", "--password", "a-long-password"]
    )
    assert created.exit_code == 0, created.output
    [record] = audit(world)
    assert (record["action"], record["actor_role"], record["actor_id"]) == ("staff_user.create", "cli", None)
    assert record["user_agent"].startswith("flask users create (os user ")
    assert record["changes"]["role"] == [None, "marketer"]

    shown = runner.invoke(args=["audit", "show", "--json", "--action", "staff_user."])
    assert shown.exit_code == 0, shown.output
    [line] = shown.output.splitlines()
    assert json.loads(line)["id"] == record["id"]
    text_view = runner.invoke(args=["audit", "show"])
    assert "staff_user.create staff_user#" in text_view.output and "a-long-password" not in text_view.output
