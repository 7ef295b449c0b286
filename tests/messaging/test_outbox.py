"""The outbox: enqueue in the caller's transaction, leases, retries, rendering, and the rules
checked at send time (consent on record, quiet hours in the recipient's zones, caps)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.db import utcnow
from app.loyalty.models import Channel, Customer
from app.loyalty.service import record_consents
from app.messaging import rules
from app.messaging.config import MessagingSettings
from app.messaging.content import MessageRejected
from app.messaging.models import Message, MessageState
from app.messaging.outbox import claim_batch, drain_once, enqueue, send_one
from app.messaging.providers import RecordingSender, RetryLater
from app.roles import Role
from tests.messaging.support import ALL_DAY, customer, message, messages, queue


@pytest.fixture
def settings_overrides():
    return {"messaging": {"quiet_hours": ALL_DAY}}


def settings_of(world) -> MessagingSettings:
    return world.app.extensions["pointcard"].settings.messaging


def drain(world, senders, **kwargs) -> int:
    return drain_once(database=world.database, senders=senders, settings=settings_of(world), **kwargs)


def set_lease_expired(world) -> None:
    with world.database.transaction() as session:
        session.execute(
            text("UPDATE messages SET lease_until = :t WHERE state = 'sending'"), {"t": utcnow() - timedelta(seconds=1)}
        )


# --- the outbox itself (transactional channels: no consent, no quiet hours) ---------------------


def test_the_outbox_sends_each_message_once_and_reclaims_abandoned_ones(world):
    card = world.enroll()
    with world.database.transaction() as session:
        ids = [
            enqueue(
                session=session,
                customer_id=card["customer_id"],
                channel="receipts",
                content={"k": key},
                dedupe_key=f"{card['customer_id']}:{key}",
            )
            for key in ("welcome", "welcome", "offer-1")
        ]
        enqueue(
            session=session,
            customer_id=card["customer_id"],
            channel="alerts",
            content={"k": "abandoned"},
            dedupe_key="abandoned",
        )
    assert ids[1] is None and ids[0] != ids[2]  # the same key again adds nothing
    # A worker claims one row and dies before sending it.
    with world.database.transaction() as session:
        claimed = claim_batch(session=session, limit=1, now=utcnow())
        assert [m.dedupe_key for m in claimed] == [f"{card['customer_id']}:welcome"]
    sender = RecordingSender()
    senders = {"receipts": sender, "alerts": sender}
    assert drain(world, senders) == 2
    assert sorted(m[2]["k"] for m in sender.sent) == ["abandoned", "offer-1"]
    # After the dead worker's lease runs out, its row is taken again and sent once.
    set_lease_expired(world)
    assert drain(world, senders) == 1
    assert drain(world, senders) == 0
    assert sorted(m[2]["k"] for m in sender.sent) == ["abandoned", "offer-1", "welcome"]
    assert {m.state for m in messages(world.database)} == {MessageState.sent}
    assert message(world.database, ids[0]).attempts == 2


def test_a_failing_provider_is_retried_with_growing_backoff_then_given_up(world):
    class Down:
        def send(self, message):
            raise ConnectionError("provider down")

    message_id = queue(world.database, customer_id=None, channel="receipts", content={}, key="x")
    delays = []
    for attempt in range(1, settings_of(world).max_attempts + 1):
        before = utcnow()
        assert drain(world, {"receipts": Down()}) == 1
        row = message(world.database, message_id)
        assert row.attempts == attempt and "provider down" in row.error
        if attempt < settings_of(world).max_attempts:
            assert row.state is MessageState.queued and row.not_before > before
            delays.append((row.not_before - before).total_seconds())
            with world.database.transaction() as session:
                session.execute(text("UPDATE messages SET not_before = :t"), {"t": utcnow() - timedelta(seconds=1)})
    assert message(world.database, message_id).state is MessageState.failed
    # 2 s doubling, each with jitter between half and one and a half times.
    assert all(2**i * 2 * 0.5 - 0.1 <= d <= 2**i * 2 * 1.5 + 0.1 for i, d in enumerate(delays))


def test_retry_after_is_honoured_and_progress_kept(world):
    class Throttled:
        def send(self, message):
            raise RetryLater("429", retry_after=600, details={"push_done": [7]})

    message_id = queue(world.database, customer_id=None, channel="receipts", content={}, key="x")
    before = utcnow()
    drain(world, {"receipts": Throttled()})
    row = message(world.database, message_id)
    assert row.state is MessageState.queued and row.not_before >= before + timedelta(seconds=600)
    assert row.details == {"push_done": [7]}


def test_a_send_starts_only_with_enough_lease_left(world):
    sender = RecordingSender()
    message_id = queue(world.database, customer_id=None, channel="receipts", content={}, key="x")
    short = settings_of(world).model_copy(update={"lease_seconds": 5, "send_timeout_seconds": 10})
    assert drain_once(database=world.database, senders={"receipts": sender}, settings=short) == 1
    row = message(world.database, message_id)
    assert sender.sent == [] and row.state is MessageState.queued and row.attempts == 0


def test_a_worker_that_lost_its_lease_cannot_overwrite_the_outcome(world):
    message_id = queue(world.database, customer_id=None, channel="receipts", content={}, key="x")
    with world.database.transaction() as session:
        [stale] = claim_batch(session=session, limit=1, now=utcnow())
    set_lease_expired(world)
    drain(world, {"receipts": RecordingSender()})  # another worker takes it over and sends it
    assert message(world.database, message_id).attempts == 2

    class Fails:
        def send(self, message):
            raise ConnectionError("late failure of the first worker")

    stale.lease_until = utcnow() + timedelta(minutes=5)
    send_one(stale, database=world.database, sender=Fails(), settings=settings_of(world))
    row = message(world.database, message_id)
    assert row.state is MessageState.sent and row.error is None


def test_a_row_the_provider_already_reported_on_is_not_sent_again(world):
    """A status callback recorded the provider id, then the worker died before its own record."""
    message_id = queue(world.database, customer_id=None, channel="receipts", content={}, key="x")
    with world.database.transaction() as session:
        claim_batch(session=session, limit=1, now=utcnow())
        session.get(Message, message_id).provider_id = "SM-from-the-callback"
    set_lease_expired(world)
    sender = RecordingSender()
    assert drain(world, {"receipts": sender}) == 1
    assert sender.sent == [] and message(world.database, message_id).state is MessageState.sent


# --- rendering ---------------------------------------------------------------------------------


def test_marketing_is_rendered_at_enqueue_with_the_customers_fields(world):
    customer_id = customer(world, "Grace Hopper")
    message_id = queue(
        world.database,
        customer_id=customer_id,
        channel="sms",
        key="offer",
        content={"body": "Hi {{ first_name }}, {{ points }} points at {{ program }}: {{ deal }}"},
        variables={"deal": "2 for 1"},
    )
    body = message(world.database, message_id).content["body"]
    assert body == "Hi Grace, 50 points at Pointcard Coffee: 2 for 1 Reply STOP to opt out."


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ no_such_field }}", "undefined"),
        ("{% for %}", "Expected an expression"),
    ],
)
def test_templates_run_in_a_sandbox_and_strictly(world, template, complaint):
    customer_id = customer(world)
    with pytest.raises(MessageRejected, match=complaint):
        queue(world.database, customer_id=customer_id, channel="push", key="x", content={"title": template})
    assert messages(world.database) == []


def test_a_text_over_the_segment_cap_is_refused_at_enqueue(world):
    customer_id = customer(world)
    limit = settings_of(world).sms_max_segments
    queue(world.database, customer_id=customer_id, channel="sms", key="ok", content={"body": "x" * (153 * limit - 23)})
    with pytest.raises(MessageRejected, match=f"{limit + 1} GSM-7 segments"):
        queue(
            world.database,
            customer_id=customer_id,
            channel="sms",
            key="long",
            content={"body": "x" * (153 * limit - 22)},
        )
    with pytest.raises(MessageRejected, match="UCS-2"):  # one emoji makes the whole text UCS-2
        queue(
            world.database,
            customer_id=customer_id,
            channel="sms",
            key="emoji",
            content={"body": "🎉" + "x" * (67 * limit)},
        )


def test_marketing_needs_a_customer(world):
    with pytest.raises(MessageRejected, match="needs a customer"):
        queue(world.database, customer_id=None, channel="sms", key="x", content={"body": "hi"})


# --- consent -----------------------------------------------------------------------------------


def test_marketing_without_an_opt_in_is_suppressed_with_the_reason(world):
    opted_in, silent = customer(world, "Ada Lovelace"), customer(world, "Alan Turing", consents=())
    blank = customer(world, "Edsger Dijkstra", consents=())
    with world.database.transaction() as session:
        # The API refuses this at enrolment; consents imported from elsewhere are checked at send time.
        record_consents(
            session=session,
            customer=session.get(Customer, blank),
            consents={Channel.push: True},
            source="import",
            disclosure="",
            ip_address=None,
        )
    sender = RecordingSender()
    for who in (opted_in, silent, blank):
        queue(world.database, customer_id=who, channel="push", key=f"offer-{who}", content={"title": "Offer"})
        queue(world.database, customer_id=who, channel="receipts", key=f"receipt-{who}", content={"n": who})
    drain(world, {"push": sender, "receipts": sender})
    by_customer = {(m.customer_id, m.channel): m for m in messages(world.database)}
    assert by_customer[(opted_in, "push")].state is MessageState.sent
    assert by_customer[(silent, "push")].state is MessageState.suppressed
    assert by_customer[(silent, "push")].reason.startswith("push opt-in declined or withdrawn on ")
    assert by_customer[(blank, "push")].reason == "the push opt-in has no source or disclosure text on record"
    # Transactional messages (a receipt, a pass update) need no marketing consent.
    assert all(by_customer[(who, "receipts")].state is MessageState.sent for who in (opted_in, silent, blank))


def test_consent_is_checked_when_sending_not_when_queueing(world):
    customer_id = customer(world)
    message_id = queue(world.database, customer_id=customer_id, channel="sms", key="x", content={"body": "Offer"})
    with world.database.transaction() as session:
        record_consents(
            session=session,
            customer=session.get(Customer, customer_id),
            consents={Channel.sms: False},
            source="card-page",
            disclosure="",
            ip_address=None,
        )
    sender = RecordingSender()
    drain(world, {"sms": sender})
    row = message(world.database, message_id)
    assert sender.sent == [] and row.state is MessageState.suppressed
    assert row.reason.startswith("sms opt-in declined or withdrawn on ") and "(card-page)" in row.reason


def test_a_transactional_channel_can_carry_a_marketing_message(world):
    """A Google Wallet addMessage offer rides the wallet channel but needs the push opt-in."""
    with_push, without = customer(world), customer(world, "Alan Turing", consents=("sms",))
    for who in (with_push, without):
        queue(world.database, customer_id=who, channel="wallet_test", key=f"patch-{who}", content={"op": "patch"})
        queue(
            world.database,
            customer_id=who,
            channel="wallet_test",
            key=f"offer-{who}",
            content={"op": "message"},
            marketing=True,
            consent=Channel.push,
        )
    drain(world, {"wallet_test": RecordingSender()})
    states = {(m.customer_id, m.content["op"]): m.state for m in messages(world.database)}
    assert states == {
        (with_push, "patch"): MessageState.sent,
        (with_push, "message"): MessageState.sent,
        (without, "patch"): MessageState.sent,
        (without, "message"): MessageState.suppressed,
    }


# --- frequency caps ------------------------------------------------------------------------------


def test_frequency_caps_per_channel_and_in_all(world):
    capped = MessagingSettings(
        quiet_hours=ALL_DAY, frequency_caps={"sms": {"count": 2, "hours": 24}}, total_cap={"count": 3, "hours": 24}
    )
    customer_id = customer(world)
    for n in range(3):
        queue(world.database, customer_id=customer_id, channel="sms", key=f"sms-{n}", content={"body": f"sms {n}"})
    for n in range(2):
        queue(world.database, customer_id=customer_id, channel="push", key=f"push-{n}", content={"title": f"p {n}"})
    sender = RecordingSender()
    drain_once(database=world.database, senders={"sms": sender, "push": sender}, settings=capped)
    states = [(m.channel, m.state, m.reason) for m in messages(world.database)]
    assert states == [
        ("sms", MessageState.sent, None),
        ("sms", MessageState.sent, None),
        ("sms", MessageState.suppressed, "frequency cap: 2 sms messages per 24 h"),
        ("push", MessageState.sent, None),
        ("push", MessageState.suppressed, "frequency cap: 3 marketing messages in all per 24 h"),
    ]
    # Another customer has caps of their own.
    other = customer(world, "Alan Turing")
    queue(world.database, customer_id=other, channel="sms", key="other", content={"body": "hi"})
    drain_once(database=world.database, senders={"sms": sender}, settings=capped)
    assert messages(world.database, customer_id=other)[0].state is MessageState.sent


# --- quiet hours ---------------------------------------------------------------------------------

WINTER_AFTERNOON_UTC = datetime(2026, 1, 15, 14, 0, tzinfo=UTC)  # a Thursday


def claim_at(world, now, settings=None) -> list[int]:
    with world.database.transaction() as session:
        return [m.id for m in claim_batch(session=session, limit=50, now=now, settings=settings or MessagingSettings())]


def test_quiet_hours_in_two_timezones_hold_one_message_until_morning(world):
    new_york = customer(world, "Ada Lovelace", timezone="America/New_York")  # 09:00 there
    tokyo = customer(world, "Yukihiro Matsumoto", timezone="Asia/Tokyo")  # 23:00 there
    ny_id = queue(
        world.database,
        customer_id=new_york,
        channel="sms",
        key="ny",
        content={"body": "Offer"},
        not_before=WINTER_AFTERNOON_UTC,
    )
    tokyo_id = queue(
        world.database,
        customer_id=tokyo,
        channel="sms",
        key="tokyo",
        content={"body": "Offer"},
        not_before=WINTER_AFTERNOON_UTC,
    )
    assert claim_at(world, WINTER_AFTERNOON_UTC) == [ny_id]
    with world.database.transaction() as session:
        session.get(Message, ny_id).state = MessageState.sent
    held = message(world.database, tokyo_id)
    assert held.state is MessageState.queued and held.attempts == 0
    assert held.not_before == datetime(2026, 1, 15, 23, 0, tzinfo=UTC)  # 08:00 in Tokyo
    assert held.reason == "quiet hours: waits until 08:00 in Asia/Tokyo"
    # Not dropped: due again at 08:00 Tokyo time, and claimed then.
    assert claim_at(world, datetime(2026, 1, 15, 22, 59, tzinfo=UTC)) == []
    assert claim_at(world, datetime(2026, 1, 15, 23, 0, tzinfo=UTC)) == [tokyo_id]


def test_without_a_timezone_every_zone_of_the_phone_number_must_be_awake(world):
    # An Australian mobile spans Perth, Sydney, Lord Howe, Christmas and Cocos Islands.
    who = customer(world, phone="+61412345678", timezone=None)
    now = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)  # 10:00 in Sydney but 05:30 on the Cocos Islands
    message_id = queue(
        world.database, customer_id=who, channel="sms", key="x", content={"body": "Offer"}, not_before=now
    )
    assert claim_at(world, now) == []
    # 08:00 on the Cocos Islands (UTC+6:30), when it is 12:30 on Lord Howe: inside everywhere.
    assert message(world.database, message_id).not_before == datetime(2026, 1, 16, 1, 30, tzinfo=UTC)


def test_the_last_known_location_gives_the_zone(world):
    who = customer(world, phone="+61412345678", timezone=None)
    now = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)  # 00:00 in Paris
    message_id = queue(
        world.database, customer_id=who, channel="sms", key="x", content={"body": "Offer"}, not_before=now
    )
    rules.register_location_source(lambda session, customer_id: (48.8566, 2.3522) if customer_id == who else None)
    try:
        assert claim_at(world, now) == []
    finally:
        rules.register_location_source(None)
    assert message(world.database, message_id).not_before == datetime(2026, 1, 16, 7, 0, tzinfo=UTC)


def test_a_stricter_regional_rule_narrows_the_window(world):
    french = customer(world, phone="+33612345678", timezone="Europe/Paris")
    sunday_noon = datetime(2026, 1, 18, 11, 0, tzinfo=UTC)
    message_id = queue(
        world.database, customer_id=french, channel="sms", key="x", content={"body": "Offer"}, not_before=sunday_noon
    )
    strict = MessagingSettings(
        quiet_hours_by_region={"FR": {"start": "10:00", "end": "20:00", "days": [1, 2, 3, 4, 5, 6]}}
    )
    assert claim_at(world, sunday_noon, strict) == []
    assert message(world.database, message_id).not_before == datetime(2026, 1, 19, 9, 0, tzinfo=UTC)  # Mon 10:00
    assert claim_at(world, datetime(2026, 1, 19, 9, 0, tzinfo=UTC), strict) == [message_id]


def test_a_regional_rule_cannot_widen_the_window():
    wide = MessagingSettings(quiet_hours_by_region={"US": {"start": "06:00", "end": "23:00"}})
    effective = wide.quiet_hours.tightened_by(wide.quiet_hours_by_region["US"])
    assert (effective.start.hour, effective.end.hour) == (8, 21)
    with pytest.raises(ValueError, match="no time to send"):
        MessagingSettings(quiet_hours_by_region={"XX": {"start": "22:00", "end": "23:00"}})


# --- the API and the command line ---------------------------------------------------------------


def test_staff_see_the_outbox_filtered(world):
    customer_id = customer(world)
    silent = customer(world, "Alan Turing", consents=())
    queue(world.database, customer_id=customer_id, channel="sms", key="a", content={"body": "A"})
    queue(world.database, customer_id=silent, channel="sms", key="b", content={"body": "B"})
    drain(world, {"sms": RecordingSender()})
    headers = world.headers(Role.marketer)
    listed = world.client.get("/api/v1/messages", query_string={"state": "suppressed"}, headers=headers)
    assert listed.status_code == 200
    [row] = listed.get_json()
    assert (row["customer_id"], row["marketing"]) == (silent, True)
    assert row["reason"].startswith("sms opt-in declined or withdrawn") and row["reason"].endswith("(enrolment)")
    mine = world.client.get(
        "/api/v1/messages",
        query_string={"customer_id": customer_id, "channel": "sms"},
        headers=world.headers(Role.admin),
    ).get_json()
    assert [m["state"] for m in mine] == ["sent"]
    bad = world.client.get("/api/v1/messages", query_string={"state": "lost"}, headers=headers)
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    assert world.client.get("/api/v1/messages", headers=world.headers(Role.cashier)).status_code == 403


def test_the_worker_command_drains_what_is_due(world):
    queue(world.database, customer_id=None, channel="email", content={"subject": "hi"}, key="x")
    result = world.app.test_cli_runner().invoke(args=["messaging", "work", "--once"])
    assert result.exit_code == 0, result.output
    assert "stopped after 1 messages" in result.output
    assert messages(world.database)[0].state is MessageState.sent


def test_vapid_keys_are_made_once(app, tmp_path):
    app.extensions["pointcard"].settings.messaging.vapid_private_key_file = tmp_path / "vapid.pem"
    runner = app.test_cli_runner()
    first = runner.invoke(args=["messaging", "vapid-keys"])
    assert first.exit_code == 0 and first.output.startswith("created ")
    second = runner.invoke(args=["messaging", "vapid-keys"])
    assert second.output.startswith("kept ") and second.output.split()[-1] == first.output.split()[-1]
    assert (tmp_path / "vapid.pem").stat().st_mode & 0o777 == 0o600
    assert app.test_client().get("/api/v1/push/vapid-public-key").get_json() == {"public_key": first.output.split()[-1]}


def test_without_vapid_keys_the_public_key_is_a_404_problem(app, tmp_path):
    app.extensions["pointcard"].settings.messaging.vapid_private_key_file = tmp_path / "missing.pem"
    response = app.test_client().get("/api/v1/push/vapid-public-key")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
