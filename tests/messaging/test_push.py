"""Web Push with the real pywebpush against a local push service that verifies VAPID and decrypts."""

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.db import utcnow
from app.loyalty.models import Channel
from app.loyalty.service import current_consents
from app.messaging.content import MAX_PUSH_PAYLOAD, MessageRejected
from app.messaging.models import MessageState, PushSubscription
from app.messaging.outbox import drain_once
from app.messaging.vapid import generate_vapid_key
from app.messaging.webpush import WebPushSender
from app.roles import Role
from tests.fakes.push import FakePushService
from tests.messaging.support import ALL_DAY, customer, message, queue

SUBJECT = "mailto:ops@pointcard.dev"
OFFER = {
    "title": "{{ first_name }}, double points",
    "body": "Double points on every coffee this weekend, {{ first_name }}: you have {{ points }} points.",
    "url": "https://card.test/offers/7",
}


@pytest.fixture(scope="module")
def push_service():
    service = FakePushService().start()
    yield service
    service.stop()


@pytest.fixture
def vapid_key(tmp_path):
    path = tmp_path / "vapid_private.pem"
    _, public = generate_vapid_key(path)
    return path, public


@pytest.fixture
def settings_overrides(vapid_key):
    return {
        "messaging": {
            "vapid_private_key_file": vapid_key[0],
            "vapid_subject": SUBJECT,
            "push_allow_http": True,
            "push_allowed_hosts": ["127.0.0.1"],
            "quiet_hours": ALL_DAY,
        }
    }


@pytest.fixture
def push(push_service, vapid_key):
    push_service.vapid_public_key = vapid_key[1]
    push_service.deliveries.clear()
    push_service.refusals.clear()
    return push_service


def subscribe(world, customer_id, subscription, **extra):
    return world.client.post(
        "/api/v1/me/push-subscriptions",
        json={**subscription, **extra},
        headers=world.headers(Role.customer, customer_id=customer_id),
    )


def drain(world) -> int:
    return drain_once(
        database=world.database,
        senders=world.app.extensions["pointcard"].senders(),
        settings=world.app.extensions["pointcard"].settings.messaging,
    )


def test_an_offer_arrives_encrypted_signed_and_equal_to_the_rendered_text(world, push, vapid_key):
    customer_id = customer(world, "Grace Hopper", consents=())
    # The card page fetches the key, subscribes the browser, and records the opt-in it showed.
    key = world.client.get("/api/v1/push/vapid-public-key").get_json()["public_key"]
    assert key == vapid_key[1]
    subscription = push.new_subscription()
    created = subscribe(world, customer_id, subscription, disclosure="Send me offers as notifications.")
    assert created.status_code == 201 and created.get_json()["endpoint"] == subscription["endpoint"]
    with world.database.transaction() as session:
        consent = current_consents(session=session, customer_id=customer_id)[Channel.push]
        assert (consent.granted, consent.source, consent.disclosure) == (
            True,
            "card-page",
            "Send me offers as notifications.",
        )

    message_id = queue(world.database, customer_id=customer_id, channel="push", content=OFFER, key="offer-7")
    assert isinstance(world.app.extensions["pointcard"].senders()["push"], WebPushSender)
    assert drain(world) == 1

    assert push.refusals == []
    [delivery] = push.delivered_to(subscription)
    sent = message(world.database, message_id)
    assert sent.state is MessageState.sent and sent.provider_id.startswith(push.url + "/m/")
    assert json.loads(delivery.plaintext) == {
        "title": "Grace, double points",
        "body": "Double points on every coffee this weekend, Grace: you have 50 points.",
        "url": "https://card.test/offers/7",
    }
    assert delivery.plaintext == json.dumps(sent.content, ensure_ascii=False, separators=(",", ":")).encode()
    assert delivery.claims["sub"] == SUBJECT and delivery.claims["aud"] == push.url
    assert time.time() < delivery.claims["exp"] <= time.time() + 24 * 3600
    assert delivery.headers["Ttl"] == str(24 * 3600) and delivery.headers["Urgency"] == "normal"
    assert delivery.headers["Topic"] == f"pointcard-{message_id}"


def test_each_push_has_fresh_vapid_claims(world, push):
    customer_id = customer(world)
    subscribe(world, customer_id, push.new_subscription())
    for n in range(2):
        queue(world.database, customer_id=customer_id, channel="push", content={"title": f"n{n}"}, key=f"k{n}")
    drain(world)
    first, second = push.deliveries
    assert first.claims["aud"] == second.claims["aud"] == push.url
    assert first.headers["Authorization"] != second.headers["Authorization"]


def test_a_410_deletes_the_subscription_and_fails_the_message(world, push):
    customer_id = customer(world)
    gone = push.new_subscription()
    subscribe(world, customer_id, gone)
    push.respond(gone, 410)
    message_id = queue(world.database, customer_id=customer_id, channel="push", content={"title": "Hi"}, key="x")
    drain(world)
    failed = message(world.database, message_id)
    assert failed.state is MessageState.failed and "gone (404/410)" in failed.error
    with world.database.transaction() as session:
        assert session.scalars(select(PushSubscription)).all() == []


def test_a_429_waits_for_retry_after_and_does_not_repeat_on_the_other_browser(world, push):
    customer_id = customer(world)
    phone, laptop = push.new_subscription(), push.new_subscription()
    subscribe(world, customer_id, phone)
    subscribe(world, customer_id, laptop)
    push.respond(laptop, 429, headers={"Retry-After": "90"})
    message_id = queue(world.database, customer_id=customer_id, channel="push", content={"title": "Hi"}, key="x")
    before = utcnow()
    drain(world)
    waiting = message(world.database, message_id)
    assert waiting.state is MessageState.queued and waiting.not_before >= before + timedelta(seconds=90)
    assert len(push.delivered_to(phone)) == 1 and push.delivered_to(laptop) == []
    with world.database.transaction() as session:
        session.get(type(waiting), message_id).not_before = utcnow() - timedelta(seconds=1)
    drain(world)
    assert message(world.database, message_id).state is MessageState.sent
    assert len(push.delivered_to(phone)) == 1 and len(push.delivered_to(laptop)) == 1


def test_a_413_fails_the_message(world, push):
    customer_id = customer(world)
    subscription = push.new_subscription()
    subscribe(world, customer_id, subscription)
    push.respond(subscription, 413)
    message_id = queue(world.database, customer_id=customer_id, channel="push", content={"title": "Hi"}, key="x")
    drain(world)
    failed = message(world.database, message_id)
    assert failed.state is MessageState.failed and "413" in failed.error


def test_a_payload_over_3993_bytes_is_refused_at_enqueue(world, push):
    customer_id = customer(world)
    room = MAX_PUSH_PAYLOAD - len('{"title":""}')
    fits = queue(
        world.database,
        customer_id=customer_id,
        channel="push",
        key="fits",
        content={"title": "é" * (room // 2) + "x" * (room % 2)},
    )  # bytes, not characters
    assert fits is not None
    with pytest.raises(MessageRejected, match="3994 bytes"):
        queue(world.database, customer_id=customer_id, channel="push", key="over", content={"title": "x" * (room + 1)})
    subscribe(world, customer_id, push.new_subscription())
    drain(world)
    assert push.refusals == [] and len(push.deliveries[0].plaintext) == MAX_PUSH_PAYLOAD


def test_no_subscription_fails_and_no_consent_suppresses(world, push):
    lonely = customer(world)
    refused = customer(world, "Alan Turing", consents=("sms",))
    subscribe(world, refused, push.new_subscription())
    lonely_id = queue(world.database, customer_id=lonely, channel="push", content={"title": "Hi"}, key="a")
    refused_id = queue(world.database, customer_id=refused, channel="push", content={"title": "Hi"}, key="b")
    drain(world)
    assert message(world.database, lonely_id).state is MessageState.failed
    assert message(world.database, refused_id).state is MessageState.suppressed
    assert push.deliveries == []


def test_subscriptions_are_per_customer_and_deleted_on_unsubscribe(world, push):
    first, second = customer(world), customer(world, "Alan Turing")
    subscription = push.new_subscription()
    assert subscribe(world, first, subscription).status_code == 201
    # The same browser later used with another card moves there.
    assert subscribe(world, second, subscription).status_code == 201
    url = "/api/v1/me/push-subscriptions"
    wrong = world.client.delete(
        url,
        query_string={"endpoint": subscription["endpoint"]},
        headers=world.headers(Role.customer, customer_id=first),
    )
    assert wrong.status_code == 404 and wrong.mimetype == "application/problem+json"
    done = world.client.delete(
        url,
        query_string={"endpoint": subscription["endpoint"]},
        headers=world.headers(Role.customer, customer_id=second),
    )
    assert done.status_code == 204
    with world.database.transaction() as session:
        assert session.scalars(select(PushSubscription)).all() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "https://evil.example.com/push/1"}, "endpoint"),
        ({"keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, "keys.p256dh"),
    ],
)
def test_subscriptions_to_unknown_hosts_or_with_bad_keys_are_refused(world, push, change, field):
    customer_id = customer(world)
    response = subscribe(world, customer_id, {**push.new_subscription(), **change})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body.get("field") == field or field in {e["field"] for e in body.get("errors", [])}


def test_https_is_required_outside_tests(world, push):
    world.app.extensions["pointcard"].settings.messaging.push_allow_http = False
    response = subscribe(world, customer(world), push.new_subscription())
    assert response.status_code == 422 and "https" in response.get_json()["detail"]


def test_the_card_page_scripts_are_served(app):
    client = app.test_client()
    for name in ("push.js", "push-sw.js"):
        response = client.get(f"/push/static/{name}")
        assert response.status_code == 200 and "javascript" in response.mimetype
        response.close()
