"""Messaging over HTTP: push subscriptions, the outbox view, voice recordings, Twilio's webhooks."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Blueprint, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from app.api import (
    Multipart,
    UnsupportedMediaType,
    current_customer_id,
    current_user_id,
    endpoint,
    request_transaction,
)
from app.errors import Forbidden, NotFound
from app.extensions import current_services, get_session, get_settings
from app.loyalty.models import Channel, Customer
from app.messaging import rules, service, sms, vapid, voice
from app.messaging.models import Message, VoiceRecording
from app.messaging.schemas import (
    MessageQuery,
    MessageRead,
    PushSubscriptionCreate,
    PushSubscriptionQuery,
    PushSubscriptionRead,
    VapidKeyRead,
    VoiceRecordingRead,
    VoiceRecordingUpload,
)
from app.messaging.twilio_client import webhook_url
from app.roles import Role

bp = Blueprint("messaging", __name__, static_folder="static", static_url_path="/push/static")

STAFF_WRITERS = [Role.admin, Role.marketer]
TWIML = "text/xml"


# --- push ------------------------------------------------------------------------------------------


@bp.get("/api/v1/push/vapid-public-key")
@endpoint(roles=None, response=VapidKeyRead, tags=["push"], errors=[404])
def vapid_public_key():
    """The key browsers subscribe with (PushManager.subscribe applicationServerKey); public.

    The VAPID public key, base64url-encoded; push services accept only messages signed with its
    private half, which never leaves the server. 404 while the server has no VAPID keys, which means
    Web Push is off here.
    """
    key = vapid.public_key(get_settings().messaging)
    if key is None:
        raise NotFound("Web Push is not set up here: run 'flask messaging vapid-keys'.")
    return VapidKeyRead(public_key=key)


@bp.post("/api/v1/me/push-subscriptions")
@endpoint(roles=[Role.customer], body=PushSubscriptionCreate, response=PushSubscriptionRead, status=201, tags=["me"])
def create_push_subscription(body: PushSubscriptionCreate):
    """Keep this browser's push subscription for the calling customer (and their opt-in, if shown).

    For a customer token. Send PushSubscription.toJSON() as is. The endpoint must be an https URL of
    a known push service (422 otherwise), so the server never posts to an address a caller chose. A
    subscription already stored moves to this customer. With `disclosure`, the text the customer saw
    when turning notifications on, a push opt-in is recorded too.
    """
    return service.subscribe(
        session=get_session(),
        customer_id=current_customer_id(),
        body=body,
        settings=get_settings().messaging,
        user_agent=request.user_agent.string,
        ip_address=request.remote_addr,
    )


@bp.delete("/api/v1/me/push-subscriptions")
@endpoint(roles=[Role.customer], query=PushSubscriptionQuery, tags=["me"], errors=[404])
def delete_push_subscription(query: PushSubscriptionQuery):
    """Forget this browser's subscription (the page calls it after PushSubscription.unsubscribe()).

    For a customer token; the `endpoint` query parameter names the subscription. Only the caller's
    own subscriptions can be removed: any other endpoint is a 404. The push opt-in itself is not
    withdrawn (that is PUT /me/consents).
    """
    service.unsubscribe(session=get_session(), customer_id=current_customer_id(), endpoint=query.endpoint)


# --- the outbox, for staff ---------------------------------------------------------------------------


@bp.get("/api/v1/messages")
@endpoint(roles=STAFF_WRITERS, query=MessageQuery, response=list[MessageRead], tags=["messages"])
def list_messages(query: MessageQuery):
    """The outbox, newest first: what was sent, what is waiting, and what was suppressed and why.

    Admins and marketers. Every message the service sends (SMS, calls, push, e-mail, wallet
    updates, webhook deliveries) is one row, written in the transaction that decided it and sent
    after the commit. `reason` says why one was suppressed or is held (no consent, a frequency cap,
    quiet hours) and `error` why one failed. Filter by `customer_id`, `state` or `channel`; paged
    with `limit` and `offset`.
    """
    return service.list_messages(session=get_session(), query=query)


# --- voice recordings ------------------------------------------------------------------------------


def _recording_read(recording) -> VoiceRecordingRead:
    base = get_settings().public_base_url.rstrip("/")
    return VoiceRecordingRead(
        id=recording.id,
        title=recording.title,
        content_type=recording.content_type,
        url=base + service.recording_path(recording),
        size=len(recording.data),
    )


@bp.post("/api/v1/voice-recordings")
@endpoint(
    roles=STAFF_WRITERS,
    multipart=Multipart(VoiceRecordingUpload, media_types={"file": service.AUDIO_TYPES}),
    response=VoiceRecordingRead,
    status=201,
    tags=["messages"],
    errors=[422],
)
def upload_recording():
    """Upload the audio a voicemail drop plays (multipart/form-data: file, title).

    Admins and marketers. The `file` part holds MP3, WAV or Ogg audio, named by its part's
    Content-Type; any other type, or an empty file, is a 422, and a body that is not multipart with a
    `file` part is a 415. The answer's `url` is public but unguessable, because Twilio fetches the
    audio from it during the call. A voicemail message names the recording by its `id`
    (`recording_id` in its content).
    """
    upload = request.files.get("file")
    if request.mimetype != "multipart/form-data" or upload is None:
        raise UnsupportedMediaType("Send multipart/form-data with the audio in a 'file' part.")
    recording = service.store_recording(
        session=get_session(),
        data=upload.read(),
        content_type=upload.mimetype,
        title=request.form.get("title", ""),
        created_by_id=current_user_id(),
    )
    return _recording_read(recording)


@bp.get("/media/voice/<token>.<ext>")
def recording_audio(token: str, ext: str):
    """The audio itself, public by its unguessable name: Twilio fetches it during the call."""
    recording = service.recording_by_token(session=get_session(), token=token)
    return Response(
        recording.data,
        mimetype=recording.content_type,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


# --- Twilio webhooks -------------------------------------------------------------------------------


def _public_url() -> str:
    """The URL Twilio signed: the configured public base, whatever the proxy in front rewrote."""
    settings = get_settings()
    base = (settings.messaging.webhook_base_url or settings.public_base_url).rstrip("/")
    query = request.query_string.decode("utf-8", "replace")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def _verify_twilio_signature() -> None:
    token = get_settings().messaging.twilio_auth_token
    signature = request.headers.get("X-Twilio-Signature", "")
    if token is None or not signature:
        raise Forbidden("Only requests signed by Twilio (X-Twilio-Signature) are taken here.")
    validator = RequestValidator(token.get_secret_value())
    # request.url is right too when the app runs behind ProxyFix.
    if not any(validator.validate(url, request.form, signature) for url in (_public_url(), request.url)):
        raise Forbidden("The X-Twilio-Signature does not match this request.")


def twilio_webhook(view: Callable) -> Callable:
    """Verify Twilio's signature, then run the view in one transaction."""

    @functools.wraps(view)
    def wrapper(**kwargs):
        _verify_twilio_signature()
        with request_transaction():
            return view(**kwargs)

    return wrapper


def _form(name: str) -> str:
    return request.form.get(name, "")


def _message_in_url() -> Message | None:
    """The outbox row named by ?m= in a callback URL we gave Twilio."""
    value = request.args.get("m", "")
    return get_session().get(Message, int(value)) if value.isdigit() else None


@bp.post("/webhooks/twilio/status")
@twilio_webhook
def twilio_message_status():
    service.sms_status(
        session=get_session(),
        message_id=request.args.get("m"),
        sid=_form("MessageSid"),
        status=_form("MessageStatus"),
        error_code=_form("ErrorCode") or None,
    )
    return Response(status=204)


@bp.post("/webhooks/twilio/sms")
@twilio_webhook
def twilio_inbound_sms():
    reply = sms.handle_keyword(
        session=get_session(), phone=_form("From"), body=_form("Body"), settings=get_settings().messaging
    )
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return Response(str(response), mimetype=TWIML)


def _voice_context(message: Message | None) -> tuple[str, rules.Recipient | None]:
    recipient = None
    if message is not None and message.customer_id is not None:
        recipient = rules.load_recipients(get_session(), [message.customer_id]).get(message.customer_id)
    return (recipient.program_name if recipient else sms.program_name(get_session())), recipient


def _recording_url(message: Message) -> str | None:
    recording_id = message.content.get("recording_id")
    recording = get_session().get(VoiceRecording, recording_id) if recording_id else None
    if recording is None:
        return None
    return webhook_url(get_settings(), service.recording_path(recording))


@bp.post("/webhooks/twilio/voice/twiml")
@twilio_webhook
def twilio_voice_twiml():
    """What the call plays, by AMD's verdict: recording after a beep, live message for a person."""
    messaging = get_settings().messaging
    message = _message_in_url()
    if message is None or message.channel != "voice":
        return Response(voice.hangup_twiml(), mimetype=TWIML)
    business, recipient = _voice_context(message)
    answered_by = request.values.get("AnsweredBy", "")
    if answered_by in voice.MACHINE_END:
        twiml = voice.voicemail_twiml(
            content=message.content, business=business, recording_url=_recording_url(message), messaging=messaging
        )
    elif answered_by in ("human", "unknown"):
        twiml = voice.live_twiml(
            content=message.content,
            business=business,
            first_name=recipient.first_name if recipient else "",
            opt_out_url=webhook_url(get_settings(), "/webhooks/twilio/voice/opt-out", m=message.id),
            messaging=messaging,
        )
    elif answered_by:  # fax, or a machine whose greeting never ended
        twiml = voice.hangup_twiml()
    else:
        twiml = voice.hold_twiml(business=business, messaging=messaging)
    return Response(twiml, mimetype=TWIML)


@bp.post("/webhooks/twilio/voice/amd")
@twilio_webhook
def twilio_voice_amd():
    """Async AMD's verdict: recorded, then the live call is sent to the TwiML for it."""
    answered_by, call_sid = _form("AnsweredBy"), _form("CallSid")
    message = service.call_answered(
        session=get_session(), message_id=request.args.get("m"), call_sid=call_sid, answered_by=answered_by
    )
    if message is not None:
        get_session().commit()
        # Not through the outbox: the machine is recording now, seconds matter, and a
        # redirect repeated by a retry changes nothing.
        url = webhook_url(get_settings(), voice.TWIML_PATH, m=message.id, AnsweredBy=answered_by)
        caller = current_services().sender("voice")
        assert isinstance(caller, voice.SteersCalls)
        caller.redirect(call_sid, url)
    return Response(status=204)


@bp.post("/webhooks/twilio/voice/status")
@twilio_webhook
def twilio_voice_status():
    service.call_status(
        session=get_session(), message_id=request.args.get("m"), call_sid=_form("CallSid"), status=_form("CallStatus")
    )
    return Response(status=204)


@bp.post("/webhooks/twilio/voice/opt-out")
@twilio_webhook
def twilio_voice_opt_out():
    """The key pressed in a live call, or in the opt-out line's menu."""
    messaging = get_settings().messaging
    message = _message_in_url()
    business, _ = _voice_context(message)
    if _form("Digits") != voice.OPT_OUT_DIGIT:
        return Response(voice.said_twiml("Goodbye.", messaging), mimetype=TWIML)
    customers: list[Customer]
    if message is not None and message.customer_id is not None:
        customers = [get_session().get_one(Customer, message.customer_id)]
    else:
        customers = sms.customers_with_phone(get_session(), _form("From"))
    service.revoke_consent(
        session=get_session(),
        customers=customers,
        channels=[Channel.voice],
        source="voice-keypress",
        note=f"pressed {voice.OPT_OUT_DIGIT} during a call",
    )
    return Response(
        voice.said_twiml(f"You will get no more calls from {business}. Goodbye.", messaging), mimetype=TWIML
    )


@bp.post("/webhooks/twilio/voice/inbound")
@twilio_webhook
def twilio_voice_inbound():
    """A call to the opt-out number: a menu whose key stops our calls to the caller's number."""
    business, _ = _voice_context(None)
    twiml = voice.opt_out_menu_twiml(
        business=business,
        messaging=get_settings().messaging,
        action_url=webhook_url(get_settings(), "/webhooks/twilio/voice/opt-out"),
    )
    return Response(twiml, mimetype=TWIML)
