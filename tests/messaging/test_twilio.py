"""SMS and voicemail drops with the real twilio SDK against a local Twilio REST API that checks
every request (and its own answers) against Twilio's OpenAPI description; signed webhooks."""

import io
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from twilio.base.exceptions import TwilioRestException

from app.db import utcnow
from app.loyalty.models import Channel, Customer
from app.loyalty.service import current_consents
from app.messaging.config import QuietHours
from app.messaging.models import Message, MessageState
from app.messaging.outbox import claim_batch, drain_once
from app.messaging.sms import TwilioSmsSender
from app.messaging.twilio_client import TwilioClients
from app.messaging.voice import TwilioVoiceSender
from app.roles import Role
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, MESSAGING_SERVICE_SID, VOICE_FROM, FakeTwilio
from tests.messaging.support import ALL_DAY, DISCLOSURE, customer, message, queue

PUBLIC = "http://card.test"  # the app's public_base_url in tests
PHONE = "+14155550123"


@pytest.fixture(scope="module")
def twilio_server():
    server = FakeTwilio().start()
    yield server
    server.stop()


@pytest.fixture
def twilio(twilio_server):
    twilio_server.reset()
    yield twilio_server
    assert twilio_server.violations == []  # nothing the SDK sent strayed from Twilio's description


@pytest.fixture
def settings_overrides(twilio_server):
    return {
        "messaging": {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_messaging_service_sid": MESSAGING_SERVICE_SID,
            "twilio_voice_from": VOICE_FROM,
            "twilio_api_base_url": twilio_server.url,
            "quiet_hours": ALL_DAY,
        }
    }


def drain(world) -> int:
    return drain_once(
        database=world.database,
        senders=world.app.extensions["pointcard"].senders(),
        settings=world.app.extensions["pointcard"].settings.messaging,
    )


def webhook(
    world,
    twilio,
    path: str,
    params: dict,
    *,
    signed: bool = True,
    public: str = PUBLIC,
    base_url: str = PUBLIC,
    signature: str | None = None,
):
    """POST form params the way Twilio does, signed for the URL Twilio was given."""
    headers = {}
    if signed:
        headers["X-Twilio-Signature"] = signature or twilio.sign(public + path, params)
    return world.client.post(path, data=params, headers=headers, base_url=base_url)


def sms_consent(world, customer_id):
    with world.database.transaction() as session:
        return current_consents(session=session, customer_id=customer_id)[Channel.sms]


# --- SMS -----------------------------------------------------------------------------------------


def test_an_sms_goes_through_the_messaging_service_with_callback_and_validity(world, twilio):
    customer_id = customer(world, "Grace Hopper", phone=PHONE)
    message_id = queue(
        world.database,
        customer_id=customer_id,
        channel="sms",
        key="offer",
        content={"body": "{{ first_name }}: 2 for 1 lattes today"},
    )
    assert isinstance(world.app.extensions["pointcard"].senders()["sms"], TwilioSmsSender)
    assert drain(world) == 1
    [request] = twilio.of_kind("message")
    assert request.field("To") == PHONE
    assert request.field("MessagingServiceSid") == MESSAGING_SERVICE_SID and request.field("From") is None
    assert request.field("Body") == "Grace: 2 for 1 lattes today Reply STOP to opt out."
    assert request.field("StatusCallback") == f"{PUBLIC}/webhooks/twilio/status?m={message_id}"
    assert request.field("ValidityPeriod") == "3600"
    sent = message(world.database, message_id)
    assert sent.state is MessageState.sent and re.fullmatch(r"SM[0-9a-f]{32}", sent.provider_id)

    # Twilio reports delivery on the status callback, signed.
    params = {"MessageSid": sent.provider_id, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID}
    path = f"/webhooks/twilio/status?m={message_id}"
    assert webhook(world, twilio, path, params).status_code == 204
    delivered = message(world.database, message_id)
    assert delivered.state is MessageState.delivered and delivered.delivered_at is not None
    # A late "sent" never moves it back.
    webhook(world, twilio, path, {**params, "MessageStatus": "sent"})
    assert message(world.database, message_id).state is MessageState.delivered


def test_webhooks_refuse_unsigned_and_wrongly_signed_calls(world, twilio):
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    for response in (
        webhook(world, twilio, "/webhooks/twilio/status?m=1", params, signed=False),
        webhook(world, twilio, "/webhooks/twilio/status?m=1", params, signature="bm90IGEgc2lnbmF0dXJl"),
        # Signed for another URL (the query string is part of what Twilio signs).
        webhook(
            world,
            twilio,
            "/webhooks/twilio/status?m=1",
            params,
            signature=twilio.sign(PUBLIC + "/webhooks/twilio/status?m=2", params),
        ),
        webhook(world, twilio, "/webhooks/twilio/sms", {"From": PHONE, "Body": "STOP"}, signed=False),
        webhook(world, twilio, "/webhooks/twilio/voice/twiml?m=1", {"CallSid": "CA1"}, signed=False),
    ):
        assert response.status_code == 403 and response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == 403


def test_signatures_are_checked_against_the_public_url_behind_a_proxy(world, twilio):
    """Twilio signs https://loyalty.example.com/...; the app behind the proxy sees http://10.0.0.5:8000."""
    world.app.extensions["pointcard"].settings.messaging.webhook_base_url = "https://loyalty.example.com"
    customer_id = customer(world, phone=PHONE)
    params = {"From": PHONE, "To": "+15005550006", "Body": "HELP"}
    inside = webhook(
        world,
        twilio,
        "/webhooks/twilio/sms",
        params,
        public="https://loyalty.example.com",
        base_url="http://10.0.0.5:8000",
    )
    assert inside.status_code == 200 and "Pointcard Coffee: loyalty messages" in inside.get_data(as_text=True)
    # A signature for the URL the app itself sees is good too: with ProxyFix that is the public one.
    seen = webhook(
        world, twilio, "/webhooks/twilio/sms", params, public="http://10.0.0.5:8000", base_url="http://10.0.0.5:8000"
    )
    assert seen.status_code == 200
    assert sms_consent(world, customer_id).granted


def test_stop_then_a_campaign_is_suppressed_and_start_sends_again(world, twilio):
    customer_id = customer(world, phone=PHONE)
    stop = webhook(world, twilio, "/webhooks/twilio/sms", {"From": PHONE, "To": "+15005550006", "Body": " stop "})
    assert stop.status_code == 200 and stop.mimetype == "text/xml"
    assert "unsubscribed" in stop.get_data(as_text=True) and "<Message>" in stop.get_data(as_text=True)
    revoked = sms_consent(world, customer_id)
    assert not revoked.granted and revoked.source == "sms-keyword:STOP"

    blocked = queue(world.database, customer_id=customer_id, channel="sms", content={"body": "Offer 1"}, key="c1")
    drain(world)
    assert message(world.database, blocked).state is MessageState.suppressed
    assert twilio.of_kind("message") == []

    start = webhook(world, twilio, "/webhooks/twilio/sms", {"From": PHONE, "To": "+15005550006", "Body": "UNSTOP"})
    assert "resubscribed" in start.get_data(as_text=True)
    restored = sms_consent(world, customer_id)
    # START brings back the opt-in given at enrolment, with the text the customer agreed to then.
    assert restored.granted and restored.disclosure == DISCLOSURE
    sent = queue(world.database, customer_id=customer_id, channel="sms", content={"body": "Offer 2"}, key="c2")
    drain(world)
    assert message(world.database, sent).state is MessageState.sent
    assert [r.field("Body") for r in twilio.of_kind("message")] == ["Offer 2 Reply STOP to opt out."]


@pytest.mark.parametrize("word", ["STOPALL", "unsubscribe", "Cancel", "END", "quit"])
def test_every_stop_word_revokes(world, twilio, word):
    customer_id = customer(world, phone=PHONE)
    webhook(world, twilio, "/webhooks/twilio/sms", {"From": PHONE, "Body": word})
    assert not sms_consent(world, customer_id).granted


def test_help_answers_program_info_and_other_texts_get_no_reply(world, twilio):
    customer(world, phone=PHONE)
    help_reply = webhook(world, twilio, "/webhooks/twilio/sms", {"From": PHONE, "Body": "help"})
    assert "Pointcard Coffee: loyalty messages." in help_reply.get_data(as_text=True)
    assert "Reply STOP" in help_reply.get_data(as_text=True)
    other = webhook(world, twilio, "/webhooks/twilio/sms", {"From": PHONE, "Body": "what time do you open?"})
    assert other.status_code == 200 and "<Message>" not in other.get_data(as_text=True)


def test_start_without_an_earlier_opt_in_grants_nothing(world, twilio):
    customer_id = customer(world, phone=PHONE, consents=())
    reply = webhook(world, twilio, "/webhooks/twilio/sms", {"From": PHONE, "Body": "START"})
    assert "no earlier opt-in" in reply.get_data(as_text=True)
    assert not sms_consent(world, customer_id).granted


def test_error_21610_revokes_consent(world, twilio):
    customer_id = customer(world, phone=PHONE)
    twilio.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
    message_id = queue(world.database, customer_id=customer_id, channel="sms", content={"body": "Offer"}, key="x")
    drain(world)
    suppressed = message(world.database, message_id)
    assert suppressed.state is MessageState.suppressed and "21610" in suppressed.reason
    consent = sms_consent(world, customer_id)
    assert not consent.granted and consent.source == "provider:sms"


def test_a_429_is_retried_by_the_outbox_after_retry_after_not_by_the_sdk(world, twilio):
    customer_id = customer(world, phone=PHONE)
    twilio.fail_next(429, 20429, "Too Many Requests", headers={"Retry-After": "30"})
    message_id = queue(world.database, customer_id=customer_id, channel="sms", content={"body": "Offer"}, key="x")
    before = utcnow()
    drain(world)
    assert len(twilio.of_kind("message")) == 1  # one request: the SDK did not retry
    waiting = message(world.database, message_id)
    assert waiting.state is MessageState.queued and waiting.not_before >= before + timedelta(seconds=30)
    with world.database.transaction() as session:
        session.get(Message, message_id).not_before = utcnow() - timedelta(seconds=1)
    drain(world)
    assert message(world.database, message_id).state is MessageState.sent


@pytest.mark.parametrize(
    ("status", "code", "state"),
    [(500, 20500, MessageState.queued), (503, 20503, MessageState.queued), (400, 21211, MessageState.failed)],
)
def test_outages_are_retried_and_bad_requests_fail(world, twilio, status, code, state):
    customer_id = customer(world, phone=PHONE)
    twilio.fail_next(status, code)
    message_id = queue(world.database, customer_id=customer_id, channel="sms", content={"body": "Offer"}, key="x")
    drain(world)
    row = message(world.database, message_id)
    assert row.state is state and f"error {code}" in row.error


def test_a_status_callback_that_arrives_first_stops_a_resend(world, twilio):
    """The worker died after Twilio took the message; Twilio's callback told us its sid."""
    customer_id = customer(world, phone=PHONE)
    message_id = queue(world.database, customer_id=customer_id, channel="sms", content={"body": "Offer"}, key="x")
    with world.database.transaction() as session:
        claim_batch(session=session, limit=1, now=utcnow() - timedelta(minutes=10))
    sid = "SM" + "ab" * 16
    webhook(world, twilio, f"/webhooks/twilio/status?m={message_id}", {"MessageSid": sid, "MessageStatus": "sent"})
    drain(world)
    row = message(world.database, message_id)
    assert (row.state, row.provider_id) == (MessageState.sent, sid) and twilio.of_kind("message") == []


def test_the_fake_refuses_what_twilios_description_does_not_name(world, twilio):
    client = TwilioClients(world.app.extensions["pointcard"].settings.messaging).get()
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(
            to=PHONE, messaging_service_sid=MESSAGING_SERVICE_SID, body="x", message_intent="marketing"
        )  # the SDK knows it; the 2010 description does not
    assert refused.value.code == 21601 and "MessageIntent" in refused.value.msg
    assert any("MessageIntent" in v for v in twilio.violations)
    twilio.violations.clear()


# --- voice ---------------------------------------------------------------------------------------


def upload_recording(world) -> dict:
    response = world.client.post(
        "/api/v1/voice-recordings",
        headers=world.headers(Role.marketer),
        content_type="multipart/form-data",
        data={"title": "Spring offer", "file": (io.BytesIO(b"ID3fake-mp3-bytes"), "offer.mp3", "audio/mpeg")},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_voicemail_drop_from_call_to_recording(world, twilio):
    customer_id = customer(world, "Grace Hopper", phone=PHONE)
    recording = upload_recording(world)
    assert world.client.get(urlsplit(recording["url"]).path).data == b"ID3fake-mp3-bytes"
    message_id = queue(
        world.database,
        customer_id=customer_id,
        channel="voice",
        key="vm",
        content={"recording_id": recording["id"], "script": "Double points all weekend."},
    )
    assert isinstance(world.app.extensions["pointcard"].senders()["voice"], TwilioVoiceSender)
    drain(world)
    [call] = twilio.of_kind("call")
    assert (call.field("To"), call.field("From")) == (PHONE, VOICE_FROM)
    assert call.field("Url") == f"{PUBLIC}/webhooks/twilio/voice/twiml?m={message_id}"
    assert call.field("MachineDetection") == "DetectMessageEnd" and call.field("AsyncAmd") == "true"
    assert call.field("AsyncAmdStatusCallback") == f"{PUBLIC}/webhooks/twilio/voice/amd?m={message_id}"
    assert call.field("StatusCallback") == f"{PUBLIC}/webhooks/twilio/voice/status?m={message_id}"
    call_sid = message(world.database, message_id).provider_id

    # Answered: with async AMD the verdict is not in yet, so the TwiML greets and holds.
    twiml_path = f"/webhooks/twilio/voice/twiml?m={message_id}"
    hold = webhook(world, twilio, twiml_path, {"CallSid": call_sid, "CallStatus": "in-progress"})
    assert hold.mimetype == "text/xml"
    assert "Hello, this is Pointcard Coffee." in hold.get_data(as_text=True) and "<Pause" in hold.get_data(as_text=True)
    assert "<Play>" not in hold.get_data(as_text=True)

    # AMD: a machine, and its greeting is over: the live call is sent to the recording.
    amd = webhook(
        world,
        twilio,
        f"/webhooks/twilio/voice/amd?m={message_id}",
        {"CallSid": call_sid, "AnsweredBy": "machine_end_beep", "MachineDetectionDuration": "4200"},
    )
    assert amd.status_code == 204
    [update] = twilio.of_kind("call_update")
    assert update.path.endswith(f"/Calls/{call_sid}.json")
    redirect = update.field("Url")
    assert redirect == f"{PUBLIC}/webhooks/twilio/voice/twiml?m={message_id}&AnsweredBy=machine_end_beep"
    assert message(world.database, message_id).details["answered_by"] == "machine_end_beep"

    path = redirect.removeprefix(PUBLIC)
    voicemail = webhook(world, twilio, path, {"CallSid": call_sid}).get_data(as_text=True)
    assert f"<Play>{recording['url']}</Play>" in voicemail
    assert (
        "This message is from Pointcard Coffee. To stop these calls, call 1 5 0 0 5 5 5 0 0 0 6 and press 9."
        in voicemail
        and voicemail.rstrip().endswith("<Hangup /></Response>")
    )

    done = webhook(
        world, twilio, f"/webhooks/twilio/voice/status?m={message_id}", {"CallSid": call_sid, "CallStatus": "completed"}
    )
    assert done.status_code == 204 and message(world.database, message_id).state is MessageState.delivered


@pytest.mark.parametrize("answered_by", ["machine_end_silence", "machine_end_other"])
def test_without_a_recording_the_script_is_read_out(world, twilio, answered_by):
    customer_id = customer(world, phone=PHONE)
    message_id = queue(
        world.database,
        customer_id=customer_id,
        channel="voice",
        key="vm",
        content={"script": "Hello {{ first_name }}, double points all weekend."},
    )
    drain(world)
    twiml = webhook(
        world,
        twilio,
        f"/webhooks/twilio/voice/twiml?m={message_id}&AnsweredBy={answered_by}",
        {"CallSid": "CA" + "1" * 32},
    ).get_data(as_text=True)
    assert "Hello Ada, double points all weekend." in twiml and "<Play>" not in twiml
    assert "To stop these calls" in twiml


def test_a_person_who_answers_hears_a_live_message_and_can_opt_out(world, twilio):
    customer_id = customer(world, "Grace Hopper", phone=PHONE)
    message_id = queue(
        world.database,
        customer_id=customer_id,
        channel="voice",
        key="vm",
        content={"script": "Double points all weekend."},
    )
    drain(world)
    call_sid = message(world.database, message_id).provider_id
    webhook(world, twilio, f"/webhooks/twilio/voice/amd?m={message_id}", {"CallSid": call_sid, "AnsweredBy": "human"})
    redirect = twilio.of_kind("call_update")[0].field("Url").removeprefix(PUBLIC)
    live = webhook(world, twilio, redirect, {"CallSid": call_sid}).get_data(as_text=True)
    assert "<Gather" in live and "Hi Grace, Pointcard Coffee has a new offer for you" in live
    assert "press 9 now" in live and "<Play>" not in live and "<Hangup" in live
    action = re.search(r'action="([^"]+)"', live)[1].replace("&amp;", "&")
    assert action == f"{PUBLIC}/webhooks/twilio/voice/opt-out?m={message_id}"
    bye = webhook(world, twilio, action.removeprefix(PUBLIC), {"CallSid": call_sid, "Digits": "9"})
    assert "no more calls from Pointcard Coffee" in bye.get_data(as_text=True)
    with world.database.transaction() as session:
        voice = current_consents(session=session, customer_id=customer_id)[Channel.voice]
        assert not voice.granted and voice.source == "voice-keypress"
    # The next voicemail is suppressed.
    again = queue(world.database, customer_id=customer_id, channel="voice", key="vm2", content={"script": "More."})
    drain(world)
    assert message(world.database, again).state is MessageState.suppressed


def test_a_fax_is_hung_up_on(world, twilio):
    customer_id = customer(world, phone=PHONE)
    message_id = queue(world.database, customer_id=customer_id, channel="voice", key="vm", content={"script": "x"})
    drain(world)
    twiml = webhook(
        world, twilio, f"/webhooks/twilio/voice/twiml?m={message_id}&AnsweredBy=fax", {"CallSid": "CA" + "1" * 32}
    ).get_data(as_text=True)
    assert "<Hangup" in twiml and "<Say" not in twiml


def test_voice_needs_its_own_written_consent(world, twilio):
    sms_only = customer(world, phone=PHONE, consents=("sms", "push"))
    message_id = queue(world.database, customer_id=sms_only, channel="voice", key="vm", content={"script": "x"})
    drain(world)
    row = message(world.database, message_id)
    assert row.state is MessageState.suppressed and row.reason.startswith("voice opt-in declined")
    assert twilio.of_kind("call") == []


def test_the_opt_out_line_stops_calls_to_the_callers_number(world, twilio):
    customer_id = customer(world, phone=PHONE)
    menu = webhook(world, twilio, "/webhooks/twilio/voice/inbound", {"From": PHONE, "CallSid": "CA" + "2" * 32})
    action = re.search(r'action="([^"]+)"', menu.get_data(as_text=True))[1]
    assert action == f"{PUBLIC}/webhooks/twilio/voice/opt-out"
    webhook(world, twilio, "/webhooks/twilio/voice/opt-out", {"From": PHONE, "Digits": "9"})
    with world.database.transaction() as session:
        assert not current_consents(session=session, customer_id=customer_id)[Channel.voice].granted


def test_uploads_must_be_audio(world, twilio):
    headers = world.headers(Role.marketer)
    wrong_type = world.client.post(
        "/api/v1/voice-recordings",
        headers=headers,
        content_type="multipart/form-data",
        data={"file": (io.BytesIO(b"<svg/>"), "x.svg", "image/svg+xml")},
    )
    assert wrong_type.status_code == 422 and wrong_type.mimetype == "application/problem+json"
    not_multipart = world.client.post("/api/v1/voice-recordings", headers=headers, json={})
    assert not_multipart.status_code == 415 and not_multipart.mimetype == "application/problem+json"
    assert world.client.get("/media/voice/nope.mp3").status_code == 404


def test_quiet_hours_hold_calls_too(world, twilio):
    today = utcnow().isoweekday()
    world.app.extensions["pointcard"].settings.messaging.quiet_hours = QuietHours(
        start="00:00", end="23:59:59.999999", days={d for d in range(1, 8) if d != today}
    )
    customer_id = customer(world, phone=PHONE, timezone="UTC")
    message_id = queue(world.database, customer_id=customer_id, channel="voice", key="vm", content={"script": "x"})
    drain(world)
    row = message(world.database, message_id)
    assert row.state is MessageState.queued and row.reason.startswith("quiet hours") and row.not_before > utcnow()
    assert twilio.of_kind("call") == []


def test_numbers_go_out_in_e164_and_a_missing_number_fails(world, twilio):
    written_by_hand = customer(world, "Grace Hopper", phone=PHONE)
    no_phone = customer(world, "Alan Turing")
    with world.database.transaction() as session:
        session.get(Customer, written_by_hand).phone = "+1 (415) 555-0123"
    sent = queue(world.database, customer_id=written_by_hand, channel="sms", content={"body": "Hi"}, key="a")
    unsent = queue(world.database, customer_id=no_phone, channel="sms", content={"body": "Hi"}, key="b")
    drain(world)
    assert [r.field("To") for r in twilio.of_kind("message")] == [PHONE]
    assert message(world.database, sent).state is MessageState.sent
    failed = message(world.database, unsent)
    assert failed.state is MessageState.failed and "no phone number" in failed.error
