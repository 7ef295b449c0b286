"""Personal data: contact fields encrypted at rest (checked in the raw database), lookups through
the blind index, key rotation, the migration of existing rows, export, erasure (the wallets are
told, the books still add up) and retention."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from alembic import command
from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app import encryption
from app.campaigns.jobs import tick
from app.db import Database, utcnow
from app.db_cli import alembic_config, upgrade
from app.geo.models import LocationPing
from app.loyalty.models import Card, Channel, Customer, LedgerEntry, Purchase
from app.messaging.models import Message, MessageState, PushSubscription
from app.messaging.outbox import drain_once, enqueue
from app.messaging.sms import customers_with_phone
from app.privacy.config import PrivacySettings
from app.privacy.jobs import purge_message_bodies
from app.roles import Role
from app.wallet.google.models import GoogleWalletObject
from tests.campaigns.support import SETTINGS as CAMPAIGN_SETTINGS
from tests.campaigns.support import broadcast
from tests.support import ANY_HOUR
from tests.wallet.apple.support import PASS_TYPE_ID, PUSH_TOKEN, issued, pass_json, register

ADA = {"name": "Ada Lovelace", "email": "ada.lovelace@example.com", "phone": "+14155550123"}
BOB = {"name": "Bob Babbage", "email": "bob.babbage@example.org", "phone": "+33612345678"}
CONSENTS = {"consents": {"sms": True, "push": True}, "consent_text": "Offers by text and push. Reply STOP to stop."}


@pytest.fixture
def settings_overrides(apple_certs, fake_apns, fake_google, tmp_path):
    fake_google.deliver_callbacks = False
    return {
        "apple": {"certs_dir": apple_certs, "apns_host": fake_apns.url, "apns_ca_file": fake_apns.ca_file},
        "google": fake_google.settings(tmp_path / "google-certs"),
        "messaging": ANY_HOUR,
        "max_purchases_per_card_per_hour": 1000,
    }


@pytest.fixture
def keyring_restored():
    """Tests that swap the process's keyring put the test one back."""
    previous = encryption.keyring()
    yield
    encryption.use(previous)


def customer_token(world, customer_id: int) -> dict[str, str]:
    return world.headers(Role.customer, customer_id=customer_id)


def raw_contacts(database: Database) -> list[tuple]:
    with database.engine.connect() as connection:
        return connection.execute(
            text("SELECT email, phone, email_index, phone_index FROM customers ORDER BY id")
        ).all()


def database_bytes(url: str) -> bytes:
    """The SQLite file as it is on disk, write-ahead log included."""
    path = Path(make_url(url).database)
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def new_key() -> bytes:
    return base64.b64decode(encryption.generate_key())


# --- encryption at rest -----------------------------------------------------------------------


def test_the_database_holds_no_plaintext_contact_yet_lookups_by_phone_and_email_work(world, db):
    ada = world.enroll(**ADA)
    world.enroll(**BOB)
    for row in raw_contacts(db.database):
        for stored in row[:2]:
            assert stored.startswith("v1.test1.")
        assert all(len(index) == 64 for index in row[2:])
    plaintext = [ADA["email"], ADA["phone"], BOB["email"], BOB["phone"], "lovelace@example", "4155550123"]
    if db.database.engine.dialect.name == "sqlite":
        db.database.engine.dispose()  # close the pool's connections so nothing is held only in memory
        data = database_bytes(db.url)
        assert b"Lovelace" in data  # the file is readable, and names are not what this encrypts
        for value in plaintext:
            assert value.encode() not in data, value
    else:
        with db.database.engine.connect() as connection:
            dump = " ".join(str(v) for row in connection.execute(text("SELECT * FROM customers")) for v in row)
        for value in plaintext:
            assert value not in dump, value

    staff = world.headers(Role.admin)
    by_phone = world.client.get("/api/v1/customers", query_string={"phone": ADA["phone"]}, headers=staff).get_json()
    assert [c["id"] for c in by_phone] == [ada["customer_id"]] and by_phone[0]["email"] == ADA["email"]
    by_email = world.client.get(
        "/api/v1/customers", query_string={"email": "ADA.Lovelace@example.com"}, headers=staff
    ).get_json()
    assert [c["id"] for c in by_email] == [ada["customer_id"]]
    with db.database.transaction() as session:
        # The inbound SMS path (STOP) finds the sender by number, however the number is spaced.
        assert [c.id for c in customers_with_phone(session, "+1 415 555 0123")] == [ada["customer_id"]]


def test_the_same_email_or_phone_cannot_enrol_twice(world):
    world.enroll(**ADA)
    again = world.client.post("/api/v1/enroll", json={"name": "Ada Again", "email": ADA["email"].upper()})
    assert again.status_code == 409 and again.get_json()["field"] == "email"
    again = world.client.post("/api/v1/enroll", json={"name": "Ada Again", "phone": ADA["phone"]})
    assert again.status_code == 409 and again.get_json()["field"] == "phone"


def test_a_ciphertext_moved_to_another_column_or_tampered_with_does_not_decrypt():
    keyring = encryption.Keyring({"a": new_key()}, "a", new_key())
    stored = keyring.encrypt("+14155550123", column="customers.phone")
    assert keyring.decrypt(stored, column="customers.phone") == "+14155550123"
    with pytest.raises(InvalidTag):  # the column is authenticated data: another column's key
        keyring.decrypt(stored, column="customers.email")
    tampered = stored[:-2] + ("A" if stored[-2] != "A" else "B") + stored[-1]
    with pytest.raises(InvalidTag):
        keyring.decrypt(tampered, column="customers.phone")
    assert keyring.encrypt("x", column="c") != keyring.encrypt("x", column="c")  # a fresh nonce each time


def test_comparing_the_encrypted_column_in_sql_is_refused():
    with pytest.raises(TypeError, match="blind index"):
        Customer.phone == "+14155550123"  # noqa: B015
    assert Customer.phone.is_(None) is not None


def test_production_refuses_to_start_without_keys(tmp_path):
    with pytest.raises(encryption.PrivacyKeyError, match="production"):
        encryption.keyring_from_settings(PrivacySettings(), env="production", instance_dir=tmp_path)
    with pytest.raises(encryption.PrivacyKeyError, match="together"):
        encryption.keyring_from_settings(
            PrivacySettings(keys={"a": encryption.generate_key()}), env="production", instance_dir=tmp_path
        )
    first = encryption.keyring_from_settings(PrivacySettings(), env="development", instance_dir=tmp_path)
    again = encryption.keyring_from_settings(PrivacySettings(), env="development", instance_dir=tmp_path)
    assert first == again and (tmp_path / encryption.KEY_FILE).stat().st_mode & 0o077 == 0


def test_rotate_key_reencrypts_in_batches_and_old_keys_can_then_go(app, world, db, keyring_restored):
    ids = [
        world.enroll(f"Customer {i}", email=f"c{i}@example.com", phone=f"+1415555{i:04d}")["customer_id"]
        for i in range(5)
    ]
    world.enroll("No Contact")
    old = encryption.keyring()
    rotated = encryption.Keyring({**old.keys, "k2": new_key()}, "k2", old.index_key)
    encryption.use(rotated)
    result = app.test_cli_runner().invoke(args=["privacy", "rotate-key", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "5 customers re-encrypted under key k2" in result.output
    stored = [value for row in raw_contacts(db.database) for value in row[:2] if value is not None]
    assert len(stored) == 10 and all(encryption.key_id_of(value) == "k2" for value in stored)
    again = app.test_cli_runner().invoke(args=["privacy", "rotate-key"])
    assert "0 customers re-encrypted" in again.output  # idempotent: nothing left under the old key

    encryption.use(encryption.Keyring({"k2": rotated.keys["k2"]}, "k2", old.index_key))  # the old key retired
    with db.database.transaction() as session:
        assert session.get(Customer, ids[3]).phone == "+14155550003"
        assert [c.id for c in customers_with_phone(session, "+14155550003")] == [ids[3]]


def test_the_migration_encrypts_existing_rows_and_the_downgrade_restores_them(backend):
    url = backend.fresh()
    config = alembic_config(url)
    try:
        command.downgrade(config, "0007")
        with _connected(url) as database, database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO programs (name, slug, currency, points_per_unit, rounding, "
                    "tier_window_days, signup_bonus, referrer_bonus, referee_bonus, timezone, "
                    "barcode_format, created_at) VALUES ('P', 'p', 'USD', 1, 'floor', 365, 0, 0, 0, "
                    "'UTC', 'QR', :now)"
                ),
                {"now": utcnow()},
            )
            connection.execute(
                text(
                    "INSERT INTO customers (program_id, first_name, last_name, email, phone, "
                    "referral_code, points_balance, created_at) SELECT id, 'Ada', '', "
                    "'ada@example.com', '+14155550123', 'REF1', 0, :now FROM programs"
                ),
                {"now": utcnow()},
            )
            connection.execute(
                text(
                    "INSERT INTO customers (program_id, first_name, last_name, referral_code, "
                    "points_balance, created_at) SELECT id, 'Bob', '', 'REF2', 0, :now FROM programs"
                ),
                {"now": utcnow()},
            )
        upgrade(url)
        with _connected(url) as database:
            [(email, phone, email_index, _), (none, *_)] = raw_contacts(database)
            assert email.startswith("v1.test1.") and phone.startswith("v1.test1.") and none is None
            assert "ada@" not in email
            assert email_index == encryption.blind_index("ada@example.com", column="customers.email")
            with database.transaction() as session:
                assert [c.first_name for c in customers_with_phone(session, "+14155550123")] == ["Ada"]
        command.downgrade(config, "0007")
        with _connected(url) as database, database.engine.connect() as connection:
            assert connection.execute(text("SELECT email, phone FROM customers ORDER BY id")).all() == [
                ("ada@example.com", "+14155550123"),
                (None, None),
            ]
    finally:
        backend.drop(url)


@contextmanager
def _connected(url: str) -> Iterator[Database]:
    database = Database(url)
    try:
        yield database
    finally:
        database.dispose()


# --- export -----------------------------------------------------------------------------------


def test_the_export_holds_everything_about_the_customer_and_nothing_about_others(world, db):
    ada = world.enroll(**ADA, **CONSENTS, referral_code=None)
    bob = world.enroll(**BOB, **CONSENTS, referral_code=_referral_code(world, ada["customer_id"]))
    for card in (ada, bob):
        assert world.purchase(card["barcode"], "30.00").status_code == 201
    assert world.redeem(ada["barcode"], _cheapest_reward(world)).status_code == 201
    _personal_rows(db.database, ada["customer_id"], "ada")
    _personal_rows(db.database, bob["customer_id"], "bob")

    response = world.client.get("/api/v1/me/export", headers=customer_token(world, ada["customer_id"]))
    assert response.status_code == 200 and response.mimetype == "application/json"
    export = response.get_json()
    profile = export["profile"]
    assert (profile["email"], profile["phone"], profile["first_name"]) == (ADA["email"], ADA["phone"], "Ada")
    assert profile["card"]["member_number"] == ada["member_number"]
    assert {c["channel"] for c in export["consents"]} >= {"sms", "push"}
    # Sign-up bonus, the purchase, the bonus for referring Bob (his name is not in it), the reward.
    assert [e["kind"] for e in export["ledger"]] == ["bonus", "earn", "bonus", "redeem"]
    assert [p["amount"] for p in export["purchases"]] == ["30.00"] and len(export["redemptions"]) == 1
    assert [r["role"] for r in export["referrals"]] == ["referrer"]
    assert [m["content"] for m in export["messages"]] == [{"body": "Hello ada"}]
    assert [(p["latitude"], p["longitude"]) for p in export["locations"]] == [(48.85, 2.35)]
    assert [s["endpoint"] for s in export["push_subscriptions"]] == ["https://push.example/ada"]

    text_of_export = response.get_data(as_text=True)
    for other in (
        BOB["email"],
        BOB["phone"],
        "Babbage",
        bob["member_number"],
        "push.example/bob",
        "Hello bob",
        bob["barcode"],
        ada["barcode"],
    ):
        assert other not in text_of_export, other
    ids = _customer_ids_in(export)
    assert ids == {ada["customer_id"]}


def _referral_code(world, customer_id: int) -> str:
    return world.customer(customer_id).referral_code


def _cheapest_reward(world) -> str:
    with world.database.transaction() as session:
        from app.loyalty.models import Reward

        return session.scalar(select(Reward.name).order_by(Reward.points_cost).limit(1))


def _personal_rows(database: Database, customer_id: int, who: str, *, not_before: datetime | None = None) -> None:
    """A position, a push subscription and a waiting marketing message for the customer."""
    with database.transaction() as session:
        session.add(
            LocationPing(
                customer_id=customer_id,
                latitude=48.85 if who == "ada" else 45.76,
                longitude=2.35 if who == "ada" else 4.83,
                accuracy_m=20,
            )
        )
        session.add(
            PushSubscription(
                customer_id=customer_id, endpoint=f"https://push.example/{who}", p256dh="p" * 80, auth="a" * 22
            )
        )
        enqueue(
            session=session,
            customer_id=customer_id,
            channel="sms",
            content={"body": f"Hello {who}"},
            dedupe_key=f"test:{who}",
            marketing=False,
            not_before=not_before,
        )


def _customer_ids_in(value) -> set[int]:
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "customer_id":
                found.add(item)
            found |= _customer_ids_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= _customer_ids_in(item)
    return found


# --- erasure ----------------------------------------------------------------------------------


def _totals(database: Database) -> dict:
    with database.transaction() as session:
        return {
            "ledger": session.scalar(select(func.sum(LedgerEntry.points))),
            "balances": session.scalar(select(func.sum(Customer.points_balance))),
            "spend": Decimal(str(session.scalar(select(func.sum(Purchase.amount))))),
            "entries": session.scalar(select(func.count()).select_from(LedgerEntry)),
        }


def test_erasure_forgets_the_person_keeps_the_books_and_voids_the_passes(world, db, apns, fake_google):
    ada, serial, auth = issued(world, **ADA, **CONSENTS)
    assert register(world, serial, auth) == 201
    assert requests.get(_google_location(world, ada), timeout=10).status_code == 200
    bob = world.enroll(**BOB, **CONSENTS)
    for card in (ada, bob):
        assert world.purchase(card["barcode"], "42.00").status_code == 201
    drain(world.app)
    apns.reset()
    fake_google.calls.clear()
    _personal_rows(db.database, ada["customer_id"], "ada", not_before=utcnow() + timedelta(days=2))
    _personal_rows(db.database, bob["customer_id"], "bob", not_before=utcnow() + timedelta(days=2))
    before, ada_balance = _totals(db.database), world.balance(ada["customer_id"])
    headers = customer_token(world, ada["customer_id"])

    assert world.client.delete("/api/v1/me", headers=headers).status_code == 204

    assert world.client.get("/api/v1/me", headers=headers).status_code == 401  # its tokens stop at once
    assert world.client.delete("/api/v1/me", headers=headers).status_code == 401
    assert world.scan(ada["barcode"]).status_code == 404
    assert _totals(db.database) == before
    with db.database.transaction() as session:
        customer = session.get(Customer, ada["customer_id"])
        assert (customer.first_name, customer.last_name, customer.email, customer.phone, customer.timezone) == (
            "",
            "",
            None,
            None,
            None,
        )
        assert customer.email_index is None and customer.phone_index is None and customer.erased_at is not None
        assert customer.points_balance == ada_balance  # the ledger kept its anonymous amounts
        assert (
            session.scalar(
                select(func.count()).select_from(LocationPing).where(LocationPing.customer_id == ada["customer_id"])
            )
            == 0
        )
        assert session.scalars(select(PushSubscription.endpoint)).all() == ["https://push.example/bob"]
        waiting = {m.customer_id: m for m in session.scalars(select(Message).where(Message.channel == "sms"))}
        assert (waiting[ada["customer_id"]].state, waiting[ada["customer_id"]].reason) == (
            MessageState.suppressed,
            "customer erased",
        )
        assert waiting[ada["customer_id"]].content == {}
        assert waiting[bob["customer_id"]].state == MessageState.queued  # nobody else's
        assert customers_with_phone(session, ADA["phone"]) == []
        assert [c.id for c in customers_with_phone(session, BOB["phone"])] == [bob["customer_id"]]
        object_id = session.scalar(
            select(GoogleWalletObject.object_id).join(Card).where(Card.customer_id == ada["customer_id"])
        )

    # The wallets hear of it: a push to the registered iPhone, which then fetches a voided pass,
    # and the Google object patched to inactive.
    drain(world.app)
    assert [push.device_token for push in apns.pushes] == [PUSH_TOKEN]
    latest = world.client.get(f"/passkit/v1/passes/{PASS_TYPE_ID}/{serial}", headers=auth)
    assert latest.status_code == 200 and pass_json(latest.data)["voided"] is True
    patches = [c.body for c in fake_google.api_calls("PATCH", f"loyaltyObject/{object_id}") if c.status == 200]
    assert patches and patches[-1]["state"] == "INACTIVE"
    assert fake_google.objects[object_id]["state"] == "INACTIVE"

    # Staff lists and segments leave the erased customer out (unless asked for, with no name).
    admin = world.headers(Role.admin)
    listed = [c["id"] for c in world.client.get("/api/v1/customers", headers=admin).get_json()]
    assert ada["customer_id"] not in listed and bob["customer_id"] in listed
    everyone = world.client.get("/api/v1/customers?include_erased=true", headers=admin).get_json()
    assert [c["first_name"] for c in everyone if c["id"] == ada["customer_id"]] == [""]
    preview = world.client.post(
        "/api/v1/segments/preview",
        json={"rules": {"field": "points", "op": "gte", "value": 0}},
        headers=world.headers(Role.marketer),
    ).get_json()
    assert preview["count"] == 1

    # The address is free again: the same person may enrol anew, as a new customer.
    assert world.enroll(**ADA)["customer_id"] != ada["customer_id"]


def drain(app) -> int:
    """Run the outbox worker with every channel's real sender until nothing is due; close them after."""
    senders, handled = app.extensions["pointcard"].senders(), 0
    try:
        while count := drain_once(
            database=app.extensions["pointcard"].database,
            senders=senders,
            settings=app.extensions["pointcard"].settings.messaging,
        ):
            handled += count
    finally:
        for sender in senders.values():
            if hasattr(sender, "close"):
                sender.close()
    return handled


def _google_location(world, card) -> str:
    response = world.client.get(card["google_save_url"].removeprefix("http://card.test"))
    assert response.status_code == 302, response.get_json()
    return response.headers["Location"]


def test_erasure_leaves_campaign_results_as_they_were(world, db):
    marketer = world.headers(Role.marketer)
    cards = [world.enroll(f"Shopper {i}", phone=f"+1415555040{i}", consents={"sms": True}) for i in range(6)]
    campaign = world.client.post("/api/v1/campaigns", json=broadcast(holdout_percent=30), headers=marketer).get_json()
    world.client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", headers=marketer)
    sent_at = datetime.fromisoformat(campaign["send_at"]) + timedelta(seconds=1)
    tick(database=db.database, now=sent_at, settings=CAMPAIGN_SETTINGS)
    with db.database.transaction() as session:
        session.execute(
            Message.__table__.update()
            .where(Message.template.like("campaign:%"))
            .values(state=MessageState.delivered.value)
        )
        for card in cards:
            session.add(
                Purchase(
                    customer_id=card["customer_id"],
                    amount=Decimal("12.50"),
                    currency="USD",
                    points_earned=0,
                    created_at=sent_at + timedelta(days=2),
                )
            )
    url = f"/api/v1/campaigns/{campaign['id']}/results?days=14"
    results = world.client.get(url, headers=marketer).get_json()
    assert results["total"]["targeted"] == 6

    for card in cards[:3]:
        assert world.client.delete("/api/v1/me", headers=customer_token(world, card["customer_id"])).status_code == 204
    assert world.client.get(url, headers=marketer).get_json() == results


def test_marketing_queued_for_an_erased_customer_is_suppressed_when_a_worker_takes_it(world, db):
    ada = world.enroll(**ADA, **CONSENTS)["customer_id"]
    assert world.client.delete("/api/v1/me", headers=customer_token(world, ada)).status_code == 204
    with db.database.transaction() as session:  # a campaign that selected her before the erasure
        message_id = enqueue(
            session=session,
            customer_id=ada,
            channel="sms",
            content={"body": "Hi {{ first_name }}"},
            dedupe_key="late-campaign",
            marketing=True,
            consent=Channel.sms,
        )
    drain(world.app)
    with db.database.transaction() as session:
        message = session.get(Message, message_id)
        assert (message.state, message.reason) == (MessageState.suppressed, "the customer no longer exists")


# --- retention --------------------------------------------------------------------------------


def test_message_bodies_are_blanked_after_the_retention_period_and_the_rows_stay(world, db):
    ada = world.enroll(**ADA)["customer_id"]
    now = utcnow()
    with db.database.transaction() as session:
        for key, state, age in (
            ("old-sent", MessageState.sent, 100),
            ("old-failed", MessageState.failed, 91),
            ("recent", MessageState.delivered, 10),
            ("old-waiting", MessageState.queued, 100),
        ):
            session.add(
                Message(
                    customer_id=ada,
                    channel="sms",
                    content={"body": f"Hi Ada ({key})"},
                    details={"segments": 1},
                    dedupe_key=key,
                    state=state,
                    created_at=now - timedelta(days=age),
                )
            )
    assert purge_message_bodies(database=db.database, now=now, settings=PrivacySettings()) == 2
    with db.database.transaction() as session:
        rows = {m.dedupe_key: m for m in session.scalars(select(Message))}
    assert rows["old-sent"].content == {} and rows["old-failed"].content == {} and rows["old-sent"].details == {}
    assert rows["old-sent"].state == MessageState.sent  # still counted
    assert rows["recent"].content == {"body": "Hi Ada (recent)"}
    assert rows["old-waiting"].content == {"body": "Hi Ada (old-waiting)"}  # not sent yet: still needed
    assert purge_message_bodies(database=db.database, now=now, settings=PrivacySettings()) == 0


def test_the_retention_jobs_are_scheduled():
    from app.wiring import JOBS

    names = {job.name for job in JOBS}
    assert {"privacy.purge_message_bodies", "geo.purge_location_pings"} <= names


def test_export_and_erasure_are_for_the_customer_only(world):
    for role in (None, Role.cashier, Role.marketer):
        assert world.client.get("/api/v1/me/export", headers=world.headers(role)).status_code in (401, 403)
        assert world.client.delete("/api/v1/me", headers=world.headers(role)).status_code in (401, 403)
    spec = json.dumps(world.client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/me/export"])
    assert "DataExport" in spec
