"""Keeping the card current in Google Wallet: patches and messages through the outbox, against
a local fake of Google (token endpoint and REST API), with the notification cap."""

from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from app.db import utcnow
from app.loyalty.models import Card, Channel, Customer
from app.loyalty.service import record_consents
from app.messaging.models import Message, MessageState
from app.wallet.google import sync
from app.wallet.google.models import GoogleWalletNotification, GoogleWalletObject
from app.wallet.messages import send_wallet_message
from tests.support import ANY_HOUR, PUSH_OPT_IN, drain


@pytest.fixture
def settings_overrides(fake_google, tmp_path):
    fake_google.deliver_callbacks = False  # the app is not served over HTTP here
    return {
        "google": fake_google.settings(tmp_path / "certs"),
        "messaging": ANY_HOUR,
        "max_purchases_per_card_per_hour": 1000,
    }


def _location(world, card) -> str:
    response = world.client.get(card["google_save_url"].removeprefix("http://card.test"))
    assert response.status_code == 302, response.get_json()
    return response.headers["Location"]


def _object(world, customer_id) -> GoogleWalletObject:
    with world.database.transaction() as session:
        obj = session.scalar(select(GoogleWalletObject).join(Card).where(Card.customer_id == customer_id))
        session.expunge(obj)
        return obj


def _saved(world, fake, **enroll) -> tuple[dict, str]:
    """Enrol, open the save link in Google (which creates the object) and get the save callback."""
    card = world.enroll(**PUSH_OPT_IN, **enroll)
    assert requests.get(_location(world, card), timeout=10).status_code == 200
    obj = _object(world, card["customer_id"])
    callback = fake.signed_callback(object_id=obj.object_id, class_id=fake.objects[obj.object_id]["classId"])
    assert world.client.post("/wallet/google/callback", json=callback).get_json() == {"status": "recorded"}
    drain(world.app)  # the class sync queued by the first link
    fake.calls.clear()
    return card, obj.object_id


def _google_messages(world, op: str | None = None, channel: str = "google_wallet") -> list[Message]:
    with world.database.transaction() as session:
        rows = session.scalars(select(Message).where(Message.channel == channel).order_by(Message.id)).all()
        session.expunge_all()
        return [row for row in rows if op is None or row.content["op"] == op]


def _patches(fake, object_id):
    return [call.body for call in fake.api_calls("PATCH", f"loyaltyObject/{object_id}") if call.status == 200]


def test_a_card_not_in_google_wallet_queues_nothing(world):
    card = world.enroll()
    world.purchase(card["barcode"], "40.00")
    assert _google_messages(world) == []


def test_earning_patches_the_object_with_the_new_balance(world, fake_google):
    card, object_id = _saved(world, fake_google)
    world.purchase(card["barcode"], "12.00")
    assert drain(world.app) == 1
    [patch] = _patches(fake_google, object_id)
    assert patch["loyaltyPoints"]["balance"] == {"int": 170}
    assert "notifyPreference" not in patch  # 170 points crosses no reward
    assert fake_google.objects[object_id]["loyaltyPoints"]["balance"] == {"int": 170}
    assert fake_google.api_calls("PUT") == []  # never PUT: it clears what it does not name
    assert fake_google.objects[object_id]["barcode"]["value"] == card["barcode"]  # the rest stays


def test_changes_ride_with_the_waiting_patch_which_sends_the_newest_balance_once(world, fake_google):
    card, object_id = _saved(world, fake_google)
    for _ in range(3):
        world.purchase(card["barcode"], "1.00")
    [_queued] = _google_messages(world, "patch_object")  # one waits: the later changes ride with it
    drain(world.app)
    [patch] = _patches(fake_google, object_id)
    assert patch["loyaltyPoints"]["balance"] == {"int": 80}
    assert _object(world, card["customer_id"]).synced_version == 3


def test_a_reward_within_reach_or_a_new_tier_notifies(world, fake_google):
    card, object_id = _saved(world, fake_google)
    world.purchase(card["barcode"], "25.00")  # 300: the free coffee is now affordable
    drain(world.app)
    world.purchase(card["barcode"], "1.00")  # 310: nothing new
    drain(world.app)
    world.purchase(card["barcode"], "24.00")  # 500 qualifying points: Silver
    drain(world.app)
    patches = _patches(fake_google, object_id)
    assert [p.get("notifyPreference") for p in patches] == ["NOTIFY_ON_UPDATE", None, "NOTIFY_ON_UPDATE"]
    assert patches[-1]["secondaryLoyaltyPoints"]["balance"] == {"string": "Silver"}


def test_past_three_notifications_a_day_updates_and_messages_go_out_silently(world, fake_google):
    card, object_id = _saved(world, fake_google)
    for amount in ("25.00", "20.00", "45.00"):  # the coffee, then $5 off, then Silver: three notifications
        world.purchase(card["barcode"], amount)
        drain(world.app)
    with world.database.transaction() as session:
        send_wallet_message(
            session=session, card=session.scalar(select(Card)), header="Double points", body="This weekend only."
        )
    drain(world.app)
    world.purchase(card["barcode"], "100.00")  # Gold: would notify, but the cap is reached
    drain(world.app)
    patches = _patches(fake_google, object_id)
    assert [p.get("notifyPreference") for p in patches] == ["NOTIFY_ON_UPDATE"] * 3 + [None]
    [message] = [c.body["message"] for c in fake_google.api_calls("POST", "loyaltyObject") if "message" in c.body]
    assert message["messageType"] == "TEXT" and message["header"] == "Double points"
    with world.database.transaction() as session:
        session.execute(update(GoogleWalletNotification).values(sent_at=utcnow() - timedelta(hours=25)))
        send_wallet_message(
            session=session, card=session.scalar(select(Card)), header="Tomorrow", body="Free pastry with any drink."
        )
    drain(world.app)
    assert fake_google.objects[object_id]["messages"][-1]["messageType"] == "TEXT_AND_NOTIFY"


def test_a_message_goes_out_as_add_message_that_notifies(world, fake_google):
    _card, object_id = _saved(world, fake_google)
    with world.database.transaction() as session:
        enqueued = send_wallet_message(
            session=session,
            card=session.scalar(select(Card)),
            header="Double points",
            body="All weekend.",
            dedupe_key="campaign-7",
        )
        again = send_wallet_message(
            session=session,
            card=session.scalar(select(Card)),
            header="Double points",
            body="All weekend.",
            dedupe_key="campaign-7",
        )
    assert enqueued and again and drain(world.app) == 1
    [call] = fake_google.api_calls("POST", f"loyaltyObject/{object_id}/addMessage")
    assert call.body["message"]["messageType"] == "TEXT_AND_NOTIFY"
    assert call.body["message"]["header"] == "Double points" and call.body["message"]["id"]


def test_an_offer_needs_the_push_opt_in_and_a_balance_update_does_not(world, fake_google):
    card, object_id = _saved(world, fake_google)
    with world.database.transaction() as session:
        customer = session.scalar(select(Customer))
        record_consents(
            session=session,
            customer=customer,
            consents={Channel.push: False},
            source="test",
            disclosure="",
            ip_address=None,
        )
        send_wallet_message(session=session, card=customer.card, header="Offer", body="Half price")
    world.purchase(card["barcode"], "2.00")
    drain(world.app)
    assert fake_google.api_calls("POST") == []
    [offer] = _google_messages(world, channel="wallet")  # the outbox's "wallet" channel carries offers
    assert offer.state is MessageState.suppressed
    assert _patches(fake_google, object_id)[-1]["loyaltyPoints"]["balance"] == {"int": 70}


def test_no_message_for_a_card_never_saved_or_deleted_from_the_wallet(world, fake_google):
    never = world.enroll(email="never@example.com")
    card, object_id = _saved(world, fake_google, email="saved@example.com")
    fake_google.deliver_callbacks = False
    with world.database.transaction() as session:
        cards = {c.customer_id: c for c in session.scalars(select(Card))}
        assert not send_wallet_message(session=session, card=cards[never["customer_id"]], header="H", body="B")
    obj = _object(world, card["customer_id"])
    gone = fake_google.signed_callback(
        object_id=object_id, class_id=fake_google.objects[object_id]["classId"], event_type="del"
    )
    assert world.client.post("/wallet/google/callback", json=gone).get_json() == {"status": "recorded"}
    with world.database.transaction() as session:
        card_row = session.get(Card, obj.card_id)
        assert not send_wallet_message(session=session, card=card_row, header="H", body="B")
    assert not _object(world, card["customer_id"]).in_wallet


def test_a_message_to_an_object_google_has_not_got_inserts_it_first(world, fake_google):
    card = world.enroll(**PUSH_OPT_IN)
    _location(world, card)  # a link was made, never saved: the object is not in Google
    drain(world.app)
    with world.database.transaction() as session:
        send_wallet_message(session=session, card=session.scalar(select(Card)), header="Hi", body="Welcome")
    drain(world.app)
    object_id = _object(world, card["customer_id"]).object_id
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in fake_google.api_calls(kind="loyaltyObject")] == [
        ("POST", "loyaltyObject"),
        ("POST", "addMessage"),
    ]
    assert fake_google.objects[object_id]["messages"][0]["body"] == "Welcome"
    assert _object(world, card["customer_id"]).inserted_in_google


def test_insert_of_an_existing_object_patches_and_patch_of_a_missing_one_inserts(world, fake_google):
    card = world.enroll()
    assert requests.get(_location(world, card), timeout=10).status_code == 200  # saved; callback lost
    drain(world.app)
    world.purchase(card["barcode"], "2.00")
    drain(world.app)
    object_id = _object(world, card["customer_id"]).object_id
    assert [(c.method, c.status) for c in fake_google.api_calls(kind="loyaltyObject")] == [
        ("POST", 409),
        ("PATCH", 200),
    ]
    del fake_google.objects[object_id]  # Google lost it
    fake_google.calls.clear()
    world.purchase(card["barcode"], "2.00")
    drain(world.app)
    assert [(c.method, c.status) for c in fake_google.api_calls(kind="loyaltyObject")] == [
        ("PATCH", 404),
        ("POST", 200),
    ]
    assert fake_google.objects[object_id]["loyaltyPoints"]["balance"] == {"int": 90}


def test_busy_google_is_retried_later_and_a_refusal_is_not(world, fake_google):
    card, object_id = _saved(world, fake_google)
    fake_google.fail_next("PATCH", "/walletobjects/v1/loyaltyObject", 503)
    world.purchase(card["barcode"], "25.00")  # notifying: its slot is given back on failure
    drain(world.app)
    [message] = _google_messages(world)[-1:]
    assert message.state is MessageState.queued and message.attempts == 1 and "503" in message.error
    with world.database.transaction() as session:
        assert session.scalar(select(func.count(GoogleWalletNotification.id))) == 0
        session.execute(update(Message).where(Message.id == message.id).values(not_before=utcnow()))
    drain(world.app)
    assert _patches(fake_google, object_id)[-1]["notifyPreference"] == "NOTIFY_ON_UPDATE"
    fake_google.fail_next("PATCH", "/walletobjects/v1/loyaltyObject", 400)
    world.purchase(card["barcode"], "1.00")
    drain(world.app)
    refused = _google_messages(world)[-1]
    assert refused.state is MessageState.failed and refused.attempts == 1 and "400" in refused.error


def test_a_change_during_a_send_is_sent_again_after_it(world, fake_google):
    card, object_id = _saved(world, fake_google)
    world.purchase(card["barcode"], "1.00")
    wallet, row_id = world.app.extensions["pointcard"].google_wallet, _object(world, card["customer_id"]).id
    with world.database.transaction() as session:
        plan = sync.plan_patch(session=session, object_row_id=row_id, wallet=wallet, force=False, now=utcnow())
    world.purchase(card["barcode"], "2.00")  # lands while the first patch is on its way
    with world.database.transaction() as session:
        sync.settle_object(session=session, plan=plan, wrote_object=True, message_id=999)
    follow_up = _google_messages(world)[-1]
    assert follow_up.content == {
        "op": "patch_object",
        "object_row_id": row_id,
        "version": plan.version + 1,
        "force": True,
    }
    drain(world.app)
    assert fake_google.objects[object_id]["loyaltyPoints"]["balance"] == {"int": 80}


def test_a_changed_design_updates_the_approved_class_under_review(world, fake_google):
    card, _ = _saved(world, fake_google)
    with world.database.transaction() as session:
        from app.loyalty.models import Store

        session.add(
            Store(
                program_id=world.program_id,
                name="Kiosk",
                latitude=45.6,
                longitude=-122.7,
                timezone="America/Los_Angeles",
            )
        )
    _location(world, card)
    drain(world.app)
    [patch] = list(fake_google.api_calls("PATCH", "loyaltyClass"))
    assert patch.status == 200 and patch.body["reviewStatus"] == "UNDER_REVIEW"
    assert len(patch.body["merchantLocations"]) == 4


def test_every_call_carries_a_token_from_the_service_account_grant(world, fake_google):
    card, _ = _saved(world, fake_google)
    world.purchase(card["barcode"], "3.00")
    drain(world.app)
    assert fake_google.token_requests == 1 and len(fake_google.tokens) == 1
    assert {call.token for call in fake_google.api_calls()} == set(fake_google.tokens)


def test_a_rotated_barcode_reaches_the_wallet_though_no_points_moved(world, fake_google):
    from app.roles import Role

    card, object_id = _saved(world, fake_google)
    rotated = world.client.post(
        f"/api/v1/customers/{card['customer_id']}/card/rotate", headers=world.headers(Role.admin)
    )
    assert rotated.status_code == 200
    drain(world.app)
    [patch] = _patches(fake_google, object_id)
    assert patch["barcode"]["value"] == rotated.get_json()["barcode"] != card["barcode"]
    assert "notifyPreference" not in patch
