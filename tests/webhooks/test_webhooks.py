"""Outgoing webhooks, end to end: admins register an endpoint, loyalty, messaging and campaign
events become signed POSTs to a real HTTPS receiver on 127.0.0.1, failures retry through the
outbox on the webhook schedule, and each delivery shows the receiver's last answer.

Signatures are checked here with the README's recipe written out with hmac and hashlib, not
with the app's own code. Retries are driven without sleeping: a test moves the due time of
the waiting outbox row into the past, then runs the worker once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text

from app.campaigns.config import CampaignSettings
from app.campaigns.jobs import score_customers
from app.db import utcnow
from app.loyalty.transactions import adjust_points
from app.messaging.models import Message, MessageState
from app.messaging.outbox import drain_once, enqueue
from app.messaging.service import sms_status
from app.roles import Role
from app.webhooks import addresses, signing
from app.webhooks.config import WebhooksSettings
from app.webhooks.models import WebhookDelivery
from app.webhooks.sender import make_sender
from tests.campaigns.support import backdate
from tests.fakes.webhook_receiver import FakeReceiver

CAMPAIGNS = CampaignSettings(model_min_customers=10_000)


@pytest.fixture
def receiver(tmp_path):
    server = FakeReceiver(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(receiver):
    # The receiver is on 127.0.0.1 with a certificate from its own CA.
    # One send at a time, so the receiver sees events in the order they happened.
    return {
        "webhooks": {"allow_private_addresses": True, "ca_file": str(receiver.ca_file)},
        "messaging": {"concurrency": 1},
    }


def verify_with_the_documented_recipe(secret: str, headers: dict, body: bytes) -> dict:
    """The README's recipe, as a receiver would write it."""
    pairs = [part.split("=", 1) for part in headers["Pointcard-Signature"].split(",")]
    [timestamp] = [value for name, value in pairs if name == "t"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert any(name == "v1" and hmac.compare_digest(expected, value) for name, value in pairs), (
        "signature does not verify"
    )
    assert abs(time.time() - int(timestamp)) < 300, "timestamp too old"
    return json.loads(body)


def register(world, url: str, events: list[str], **fields) -> dict:
    response = world.client.post(
        "/api/v1/webhooks", json={"url": url, "events": events, **fields}, headers=world.headers(Role.admin)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def work(world) -> int:
    """One worker pass over what is due, with the real webhook sender."""
    settings = world.app.extensions["pointcard"].settings.messaging
    sender = make_sender(world.app.extensions["pointcard"])
    try:
        return drain_once(database=world.database, senders={"webhook": sender}, settings=settings)
    finally:
        sender.close()


def webhook_messages(world) -> list[Message]:
    with world.database.transaction() as session:
        return list(session.scalars(select(Message).where(Message.channel == "webhook").order_by(Message.id)))


def make_due(world) -> None:
    """The clock moves on to the next retry: waiting webhook messages become due."""
    with world.database.transaction() as session:
        session.execute(
            text("UPDATE messages SET not_before = :t WHERE channel = 'webhook' AND state = 'queued'"),
            {"t": utcnow() - timedelta(seconds=1)},
        )


def deliveries(world, endpoint_id: int, **params) -> list[dict]:
    response = world.client.get(
        f"/api/v1/webhooks/{endpoint_id}/deliveries", query_string=params, headers=world.headers(Role.admin)
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# --- events reach the receiver, signed ----------------------------------------------------------


def test_loyalty_events_reach_the_receiver_signed_with_the_documented_recipe(world, receiver):
    endpoint = register(
        world,
        receiver.url,
        ["customer.enrolled", "points.changed", "tier.changed", "reward.redeemed"],
        description="CRM sync",
    )
    assert endpoint["secret"].startswith("whsec_") and endpoint["secret_hint"] == endpoint["secret"][-4:]
    card = world.enroll("Ada Lovelace", email="ada@example.com")
    assert world.purchase(card["barcode"], "60.00").status_code == 201  # 600 points: Silver
    assert world.redeem(card["barcode"], "Free drip coffee").status_code == 201
    assert receiver.requests == []  # nothing leaves before a worker sends it
    work(world)

    events = [verify_with_the_documented_recipe(endpoint["secret"], r.headers, r.body) for r in receiver.requests]
    assert [e["type"] for e in events] == [
        "customer.enrolled",
        "tier.changed",
        "points.changed",  # enrolment
        "points.changed",
        "tier.changed",  # the purchase
        "points.changed",
        "reward.redeemed",
    ]  # the redemption
    for request, sent in zip(receiver.requests, events, strict=True):
        assert request.path == "/hooks/pointcard" and request.headers["Pointcard-Event"] == sent["type"]
        assert request.headers["Content-Type"] == "application/json"
    customer = {k: events[0]["data"]["customer"][k] for k in ("id", "member_number", "email", "first_name")}
    assert customer == {
        "id": card["customer_id"],
        "member_number": card["member_number"],
        "email": "ada@example.com",
        "first_name": "Ada",
    }
    signup, purchase, redemption = (e["data"] for e in events if e["type"] == "points.changed")
    assert (signup["entry"]["kind"], signup["previous_balance"], signup["balance"]) == ("bonus", 0, 50)
    assert (purchase["entry"]["kind"], purchase["entry"]["points"], purchase["balance"]) == ("earn", 600, 650)
    assert (redemption["entry"]["kind"], redemption["balance"]) == ("redeem", 350)
    assert (events[1]["data"]["previous_tier"], events[1]["data"]["tier"]["name"]) == (None, "Bronze")
    assert (events[4]["data"]["previous_tier"]["name"], events[4]["data"]["tier"]["name"]) == ("Bronze", "Silver")
    assert events[6]["data"]["reward"]["name"] == "Free drip coffee"
    assert events[6]["data"]["redemption"]["points"] == 300
    assert world.balance(card["customer_id"]) == 350
    # Each event has its own id; the delivery header names the delivery record staff can look up.
    assert len({e["id"] for e in events}) == 7
    shown = {d["uuid"]: d for d in deliveries(world, endpoint["id"])}
    assert {r.headers["Pointcard-Delivery"] for r in receiver.requests} == shown.keys()
    assert {d["state"] for d in shown.values()} == {"delivered"} and {d["attempts"] for d in shown.values()} == {1}
    # The stored events and the signing secret are encrypted like the customer's own row.
    with world.database.engine.connect() as connection:
        raw = " ".join(
            str(value)
            for row in connection.execute(
                text("SELECT payload FROM webhook_deliveries UNION ALL SELECT secret FROM webhook_endpoints")
            )
            for value in row
        )
    assert "ada@example.com" not in raw and endpoint["secret"] not in raw and raw.count("v1.") == 8
    # A body changed on the way does not verify.
    first = receiver.requests[0]
    with pytest.raises(AssertionError, match="does not verify"):
        verify_with_the_documented_recipe(endpoint["secret"], first.headers, first.body.replace(b"Ada", b"Eve"))


def test_only_subscribed_events_go_and_nothing_is_queued_without_subscribers(world, receiver):
    card = world.enroll("Nobody Listening")
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(world.database.engine, "before_cursor_execute", record)
    try:
        assert world.purchase(card["barcode"], "10.00").status_code == 201
    finally:
        event.remove(world.database.engine, "before_cursor_execute", record)
    # What webhooks cost the till with no endpoint: one look at the endpoints, nothing written.
    assert [s.split()[0] for s in statements if "webhook" in s] == ["SELECT"]
    assert webhook_messages(world) == []
    register(world, receiver.url, ["reward.redeemed"])
    world.purchase(card["barcode"], "40.00")
    assert webhook_messages(world) == []  # points changed, but only redemptions are wanted
    world.redeem(card["barcode"], "Free drip coffee")
    work(world)
    assert [r.headers["Pointcard-Event"] for r in receiver.requests] == ["reward.redeemed"]


# --- retries --------------------------------------------------------------------------------------


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_try_once(world, receiver):
    endpoint = register(world, receiver.url, ["customer.enrolled"])
    receiver.respond(500, "database is down")
    receiver.respond(503, "still down", headers={"Retry-After": "90"})
    card = world.enroll("Ada Lovelace")

    before = utcnow()
    work(world)
    [shown] = deliveries(world, endpoint["id"])
    assert (shown["state"], shown["attempts"], shown["last_status_code"]) == ("pending", 1, 500)
    assert shown["last_response"] == "database is down" and "500" in shown["last_error"]
    # The first retry waits 30 s on the schedule, give or take the 20 % jitter.
    assert shown["next_attempt_at"] is not None
    [waiting] = webhook_messages(world)
    assert before + timedelta(seconds=24) <= waiting.not_before <= utcnow() + timedelta(seconds=36)
    assert work(world) == 0 and len(receiver.requests) == 1  # not due yet: nothing goes

    make_due(world)
    work(world)
    [shown] = deliveries(world, endpoint["id"])
    assert (shown["state"], shown["attempts"], shown["last_status_code"]) == ("pending", 2, 503)
    [waiting] = webhook_messages(world)
    assert waiting.not_before >= utcnow() + timedelta(seconds=85)  # Retry-After 90 beats the 120 s +- 20 %

    make_due(world)
    work(world)
    for _ in range(3):  # later passes find nothing more to send
        make_due(world)
        work(world)
    assert [r.status for r in receiver.requests] == [500, 503, 200]
    assert len({r.headers["Pointcard-Delivery"] for r in receiver.requests}) == 1
    assert receiver.accepted == {shown["uuid"]: 1}
    bodies = [verify_with_the_documented_recipe(endpoint["secret"], r.headers, r.body) for r in receiver.requests]
    assert {b["id"] for b in bodies} == {shown["event_id"]}
    assert bodies[0]["data"]["customer"]["id"] == card["customer_id"]
    [shown] = deliveries(world, endpoint["id"])
    assert (shown["state"], shown["attempts"], shown["last_status_code"], shown["last_response"]) == (
        "delivered",
        3,
        200,
        "thanks",
    )
    assert shown["last_error"] is None and shown["delivered_at"] and shown["next_attempt_at"] is None
    assert [m.state for m in webhook_messages(world)] == [MessageState.sent]


def test_out_of_tries_the_delivery_fails_and_can_be_sent_again_by_hand(world, receiver):
    world.app.extensions["pointcard"].settings.webhooks.retry_seconds = [60]  # two tries in all
    endpoint = register(world, receiver.url, ["customer.enrolled"])
    for _ in range(2):
        receiver.respond(404, "no such route")
    world.enroll("Ada Lovelace")
    work(world)
    make_due(world)
    work(world)
    [shown] = deliveries(world, endpoint["id"])
    assert (shown["state"], shown["attempts"], shown["last_status_code"]) == ("failed", 2, 404)
    assert [m.state for m in webhook_messages(world)] == [MessageState.failed]
    make_due(world)
    work(world)
    assert len(receiver.requests) == 2

    # Fixed on the receiver's side: an admin sends it again, with the same delivery id.
    again = world.client.post(
        f"/api/v1/webhooks/{endpoint['id']}/deliveries/{shown['id']}/retry", headers=world.headers(Role.admin)
    )
    assert again.status_code == 202 and again.get_json()["state"] == "pending"
    assert (
        world.client.post(
            f"/api/v1/webhooks/{endpoint['id']}/deliveries/{shown['id']}/retry", headers=world.headers(Role.admin)
        ).status_code
        == 409
    )  # still going
    work(world)
    assert [r.status for r in receiver.requests] == [404, 404, 200]
    assert receiver.requests[2].headers["Pointcard-Delivery"] == shown["uuid"]
    assert deliveries(world, endpoint["id"])[0]["state"] == "delivered"


def test_410_gone_switches_the_endpoint_off(world, receiver):
    endpoint = register(world, receiver.url, ["customer.enrolled"])
    receiver.respond(410, "unsubscribed")
    world.enroll("Ada Lovelace")
    work(world)
    [shown] = deliveries(world, endpoint["id"])
    assert (shown["state"], shown["last_status_code"]) == ("failed", 410)
    read = world.client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=world.headers(Role.admin)).get_json()
    assert read["active"] is False and "410" in read["disabled_reason"]
    world.enroll("Bob Babbage")
    assert len(webhook_messages(world)) == 1  # a switched-off endpoint gets nothing new
    # Switched back on by an admin, it receives again.
    world.client.patch(f"/api/v1/webhooks/{endpoint['id']}", json={"active": True}, headers=world.headers(Role.admin))
    world.enroll("Cy Clerk")
    work(world)
    assert [r.status for r in receiver.requests] == [410, 200]


# --- other events -----------------------------------------------------------------------------------


def test_lapsing_lapsed_and_won_back_customers(world, receiver):
    endpoint = register(world, receiver.url, ["customer.lapsing", "customer.lapsed", "customer.won_back"])
    t0 = utcnow() - timedelta(days=21)
    card = world.enroll("Ada Lovelace")
    backdate(world, card["customer_id"], enrolled_days_ago=200, visits_days_ago=list(range(20, 150, 7)), now=t0)
    score_customers(database=world.database, now=t0 - timedelta(days=15), settings=CAMPAIGNS, force=True)
    assert webhook_messages(world) == []  # the first night is the baseline: no news yet
    score_customers(database=world.database, now=t0, settings=CAMPAIGNS, force=True)  # 20 days, weekly: lapsing
    score_customers(database=world.database, now=t0, settings=CAMPAIGNS, force=True)  # a re-run adds nothing
    score_customers(database=world.database, now=t0 + timedelta(days=20), settings=CAMPAIGNS, force=True)
    assert world.purchase(card["barcode"], "4.50").status_code == 201  # back at the till: won back at once
    work(world)
    events = [verify_with_the_documented_recipe(endpoint["secret"], r.headers, r.body) for r in receiver.requests]
    assert [(e["type"], e["data"]["status"], e["data"].get("previous_status")) for e in events] == [
        ("customer.lapsing", "lapsing", "active"),
        ("customer.lapsed", "lapsed", "lapsing"),
        ("customer.won_back", "won_back", None),
    ]
    assert {e["data"]["customer"]["id"] for e in events} == {card["customer_id"]}
    # Tonight's scores agree that she is won back, which is no news.
    score_customers(database=world.database, now=utcnow() + timedelta(hours=1), settings=CAMPAIGNS, force=True)
    assert len(webhook_messages(world)) == 3


def test_a_delivered_text_message_is_an_event(world, receiver):
    endpoint = register(world, receiver.url, ["message.delivered"])
    card = world.enroll("Ada Lovelace", phone="+14155550101")
    with world.database.transaction() as session:
        message_id = enqueue(
            session=session,
            customer_id=card["customer_id"],
            channel="sms",
            marketing=False,
            content={"body": "Your receipt"},
            dedupe_key="receipt-1",
            template="receipt",
        )
        session.execute(
            text("UPDATE messages SET state = 'sent', provider_id = 'SM123' WHERE id = :id"), {"id": message_id}
        )
    with world.database.transaction() as session:  # what Twilio's status callback does
        sms_status(session=session, message_id=str(message_id), sid="SM123", status="delivered", error_code=None)
    with world.database.transaction() as session:  # a repeated callback is no new event
        sms_status(session=session, message_id=str(message_id), sid="SM123", status="delivered", error_code=None)
    work(world)
    [event] = [verify_with_the_documented_recipe(endpoint["secret"], r.headers, r.body) for r in receiver.requests]
    assert event["type"] == "message.delivered"
    assert event["data"]["message"]["id"] == message_id and event["data"]["message"]["channel"] == "sms"
    assert event["data"]["customer"]["id"] == card["customer_id"]


def test_ping_and_secret_rotation(world, receiver):
    endpoint = register(world, receiver.url, ["customer.enrolled"])
    admin = world.headers(Role.admin)
    assert "secret" not in world.client.get("/api/v1/webhooks", headers=admin).get_json()[0]
    ping = world.client.post(f"/api/v1/webhooks/{endpoint['id']}/test", headers=admin)
    assert ping.status_code == 202 and ping.get_json()["event_type"] == "ping"
    rotated = world.client.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret", headers=admin).get_json()
    assert rotated["secret"] != endpoint["secret"] and rotated["previous_secret_until"]
    work(world)  # queued before the rotation, it goes signed with the new secret, and the old one for a day
    [request] = receiver.requests
    assert request.headers["Pointcard-Signature"].count("v1=") == 2
    for secret in (rotated["secret"], endpoint["secret"]):
        assert verify_with_the_documented_recipe(secret, request.headers, request.body)["type"] == "ping"
    assert signing.verify(secret=rotated["secret"], body=request.body, header=request.headers["Pointcard-Signature"])

    # Rotated again with the old secret dropped at once: only the newest signs.
    newest = world.client.post(
        f"/api/v1/webhooks/{endpoint['id']}/rotate-secret", json={"old_secret_hours": 0}, headers=admin
    ).get_json()
    assert newest["previous_secret_until"] is None
    world.client.post(f"/api/v1/webhooks/{endpoint['id']}/test", headers=admin)
    work(world)
    request = receiver.requests[1]
    assert verify_with_the_documented_recipe(newest["secret"], request.headers, request.body)["type"] == "ping"
    for stale in (rotated["secret"], endpoint["secret"]):
        with pytest.raises(AssertionError):
            verify_with_the_documented_recipe(stale, request.headers, request.body)
    # The helper refuses an old timestamp, even with a right signature.
    assert not signing.verify(
        secret=newest["secret"], body=request.body, header=request.headers["Pointcard-Signature"], now=time.time() + 301
    )


# --- what may be registered, and by whom ----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "ftp://example.com/hook",
        "https://user:pw@example.com/x",
        "https:///nohost",
        "http://127.0.0.1:9/hook",
    ],
)
def test_only_https_urls_are_taken(world, url):
    response = world.client.post(
        "/api/v1/webhooks", json={"url": url, "events": ["points.changed"]}, headers=world.headers(Role.admin)
    )
    assert response.status_code == 422
    body = response.get_json()
    assert body["type"].endswith("/webhook-url-refused") and body["field"] == "url"


def test_unknown_events_are_refused(world, receiver):
    response = world.client.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["points.stolen"]}, headers=world.headers(Role.admin)
    )
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"].startswith("events")


def test_private_addresses_are_refused_at_registration_and_when_sending(world, receiver):
    strict = WebhooksSettings()
    for url in (
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/x",
        "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://100.64.0.1/x",
    ):
        with pytest.raises(addresses.AddressRefused, match="not a public address"):
            addresses.check(url, strict)
    assert addresses.parse("https://hooks.example.com:8443/a?b=1", strict).path == "/a?b=1"
    assert addresses.is_public(addresses.ipaddress.ip_address("93.184.216.34"))
    # Local development: http only to the loopback, and only when asked for.
    dev = WebhooksSettings(allow_http_localhost=True)
    assert addresses.check("http://localhost:8080/x", dev).scheme == "http"
    with pytest.raises(addresses.AddressRefused):
        addresses.check("http://example.com/x", dev)

    # Registered while allowed, then the deployment stops allowing private addresses: the
    # worker checks again before connecting, and the receiver gets nothing.
    endpoint = register(world, receiver.url, ["customer.enrolled"])
    world.app.extensions["pointcard"].settings.webhooks.allow_private_addresses = False
    world.enroll("Ada Lovelace")
    work(world)
    assert receiver.requests == []
    [shown] = deliveries(world, endpoint["id"])
    assert shown["state"] == "failed" and "not a public address" in shown["last_error"]


def test_only_admins_manage_webhooks(world, receiver):
    endpoint = register(world, receiver.url, ["customer.enrolled"])
    card = world.enroll("Ada Lovelace")
    calls = [
        ("get", "/api/v1/webhooks", None),
        ("post", "/api/v1/webhooks", {"url": receiver.url, "events": ["ping"]}),
        ("patch", f"/api/v1/webhooks/{endpoint['id']}", {"active": False}),
        ("delete", f"/api/v1/webhooks/{endpoint['id']}", None),
        ("get", f"/api/v1/webhooks/{endpoint['id']}/deliveries", None),
        ("post", f"/api/v1/webhooks/{endpoint['id']}/test", None),
        ("post", f"/api/v1/webhooks/{endpoint['id']}/rotate-secret", None),
    ]
    for method, path, body in calls:
        assert getattr(world.client, method)(path, json=body).status_code == 401
        for role, extra in (
            (Role.marketer, {}),
            (Role.cashier, {}),
            (Role.customer, {"customer_id": card["customer_id"]}),
        ):
            response = getattr(world.client, method)(path, json=body, headers=world.headers(role, **extra))
            assert response.status_code == 403, (method, path, role)
    still = world.client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=world.headers(Role.admin))
    assert still.get_json()["active"]


def test_deleting_an_endpoint_drops_what_waits_for_it(world, receiver):
    endpoint = register(world, receiver.url, ["customer.enrolled"])
    world.enroll("Ada Lovelace")
    assert (
        world.client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=world.headers(Role.admin)).status_code == 204
    )
    work(world)
    assert receiver.requests == []
    assert [m.state for m in webhook_messages(world)] == [MessageState.failed]
    with world.database.transaction() as session:
        assert session.scalar(select(WebhookDelivery)) is None


def test_only_the_start_of_a_long_answer_is_kept(world, receiver):
    world.app.extensions["pointcard"].settings.webhooks.response_excerpt_chars = 20
    endpoint = register(world, receiver.url, ["customer.enrolled"])
    receiver.respond(500, "é" * 200_000)
    world.enroll("Ada Lovelace")
    work(world)
    assert deliveries(world, endpoint["id"])[0]["last_response"] == "é" * 20


def test_a_delivery_the_receiver_already_accepted_is_not_sent_again(world, receiver):
    # A worker got the 2xx and recorded it on the delivery, then died before settling its
    # outbox row: when the row's lease runs out, the next worker finds it delivered.
    endpoint = register(world, receiver.url, ["customer.enrolled"])
    world.enroll("Ada Lovelace")
    with world.database.transaction() as session:
        session.execute(text("UPDATE webhook_deliveries SET state = 'delivered'"))
    work(world)
    assert receiver.requests == [] and [m.state for m in webhook_messages(world)] == [MessageState.sent]
    assert deliveries(world, endpoint["id"])[0]["state"] == "delivered"


def test_the_cli_lists_endpoints_and_queues_a_ping(world, receiver):
    endpoint = register(world, receiver.url, ["points.changed"])
    runner = world.app.test_cli_runner()
    listed = runner.invoke(args=["webhooks", "list"])
    assert listed.exit_code == 0 and f"{endpoint['id']}\t{receiver.url}\tpoints.changed\tactive" in listed.output
    assert runner.invoke(args=["webhooks", "ping", str(endpoint["id"])]).exit_code == 0
    work(world)
    assert [r.headers["Pointcard-Event"] for r in receiver.requests] == ["ping"]


def test_events_of_a_rolled_back_savepoint_are_not_sent(world, receiver):
    endpoint = register(world, receiver.url, ["points.changed"])
    customer_id = world.enroll("Ada Lovelace")["customer_id"]
    staff_id = world.staff[Role.admin].id
    with world.database.transaction() as session:
        adjust_points(session=session, customer_id=customer_id, points=10, reason="kept", staff_user_id=staff_id)
        with pytest.raises(RuntimeError), session.begin_nested():
            adjust_points(session=session, customer_id=customer_id, points=20, reason="undone", staff_user_id=staff_id)
            raise RuntimeError("changed our mind")
        with session.begin_nested():
            adjust_points(
                session=session, customer_id=customer_id, points=30, reason="released", staff_user_id=staff_id
            )
    with pytest.raises(RuntimeError), world.database.transaction() as session:
        adjust_points(session=session, customer_id=customer_id, points=40, reason="rolled back", staff_user_id=staff_id)
        raise RuntimeError("the whole transaction fails")
    work(world)
    events = [verify_with_the_documented_recipe(endpoint["secret"], r.headers, r.body) for r in receiver.requests]
    assert [(e["data"]["entry"]["reason"], e["data"]["balance"]) for e in events] == [
        ("signup bonus", 50),
        ("kept", 60),
        ("released", 90),
    ]


def test_unreachable_and_untrusted_receivers_are_retried_with_the_reason_shown(world, receiver):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{probe.getsockname()[1]}/hook"
    down = register(world, closed, ["customer.enrolled"])
    world.app.extensions["pointcard"].settings.webhooks.ca_file = None  # the receiver's CA is not trusted now
    untrusted = register(world, receiver.url, ["customer.enrolled"])
    world.enroll("Ada Lovelace")
    work(world)
    [refused] = deliveries(world, down["id"])
    assert (refused["state"], refused["last_status_code"]) == ("pending", None)
    assert refused["last_error"].startswith("ConnectError") and refused["next_attempt_at"]
    [unverified] = deliveries(world, untrusted["id"])
    assert unverified["state"] == "pending" and "CERTIFICATE_VERIFY_FAILED" in unverified["last_error"]
    assert receiver.requests == []  # no request went over a connection it could not verify


def test_an_erased_customer_is_forgotten_here_and_receivers_are_told(world, receiver):
    endpoint = register(world, receiver.url, ["customer.enrolled", "points.changed", "customer.erased"])
    card = world.enroll("Ada Lovelace", email="ada@example.com")
    other = world.enroll("Grace Hopper", email="grace@example.com")
    work(world)
    token = world.token(Role.customer, customer_id=card["customer_id"])
    assert world.client.delete("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 204
    kept = [(d["event_type"], d["payload"]["data"]["customer"]["id"]) for d in deliveries(world, endpoint["id"])]
    assert [event for event, customer_id in kept if customer_id == card["customer_id"]] == ["customer.erased"]
    assert ("customer.enrolled", other["customer_id"]) in kept  # nobody else's history goes
    receiver.requests.clear()
    work(world)
    [erased] = [verify_with_the_documented_recipe(endpoint["secret"], r.headers, r.body) for r in receiver.requests]
    assert erased["type"] == "customer.erased"
    person = erased["data"]["customer"]
    assert (person["id"], person["member_number"]) == (card["customer_id"], card["member_number"])
    assert (
        person["email"] is None and person["first_name"] == "" and b"ada@example.com" not in receiver.requests[0].body
    )
