"""What the messaging API and the provider webhooks do to the database. Flushes, never commits."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import NotFound, Unprocessable
from app.loyalty.models import Channel, Customer
from app.loyalty.service import record_consents
from app.messaging import events
from app.messaging.config import MessagingSettings
from app.messaging.models import Message, MessageState, PushSubscription, VoiceRecording
from app.messaging.schemas import MessageQuery, PushSubscriptionCreate
from app.messaging.twilio_client import OPTED_OUT

AUDIO_TYPES = {"audio/mpeg": "mp3", "audio/wav": "wav", "audio/x-wav": "wav", "audio/ogg": "ogg"}
# How far each state is along the way; a late, out-of-order callback never moves a row back.
PROGRESS = {MessageState.queued: 0, MessageState.sending: 1, MessageState.sent: 2, MessageState.delivered: 3}


# --- outbox view ---------------------------------------------------------------------------------


def list_messages(*, session: Session, query: MessageQuery) -> list[Message]:
    statement = select(Message).order_by(Message.id.desc()).limit(query.limit).offset(query.offset)
    if query.customer_id is not None:
        statement = statement.where(Message.customer_id == query.customer_id)
    if query.state is not None:
        statement = statement.where(Message.state == query.state)
    if query.channel:
        statement = statement.where(Message.channel == query.channel)
    return list(session.scalars(statement))


# --- consent ---------------------------------------------------------------------------------------


def revoke_consent(
    *, session: Session, customers: Iterable[Customer], channels: Iterable[Channel], source: str, note: str
) -> int:
    """Withdraw consent (STOP, a key pressed in a call, a carrier's opt-out): appended, never edited."""
    count = 0
    for customer in customers:
        record_consents(
            session=session,
            customer=customer,
            consents=dict.fromkeys(channels, False),
            source=source,
            disclosure=note[:2000],
            ip_address=None,
        )
        count += 1
    return count


# --- push subscriptions ----------------------------------------------------------------------------


class PushEndpointRefused(Unprocessable):
    slug, title = "push-endpoint-refused", "Push endpoint refused"


def _check_endpoint(endpoint: str, settings: MessagingSettings) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme != "https" and not (settings.push_allow_http and parts.scheme == "http"):
        raise PushEndpointRefused("A push endpoint must be an https URL.", field="endpoint")
    host = (parts.hostname or "").lower()
    if not any(host == allowed or host.endswith("." + allowed) for allowed in settings.push_allowed_hosts):
        raise PushEndpointRefused(f"{host or 'That host'} is not a known push service.", field="endpoint")


def subscribe(
    *,
    session: Session,
    customer_id: int,
    body: PushSubscriptionCreate,
    settings: MessagingSettings,
    user_agent: str = "",
    ip_address: str | None = None,
) -> PushSubscription:
    """Store (or move to this customer) the browser's subscription; record the opt-in if one was shown."""
    _check_endpoint(body.endpoint, settings)
    subscription = session.scalar(select(PushSubscription).where(PushSubscription.endpoint == body.endpoint))
    if subscription is None:
        subscription = PushSubscription(endpoint=body.endpoint, created_at=utcnow())
        session.add(subscription)
    subscription.customer_id, subscription.p256dh, subscription.auth = customer_id, body.keys.p256dh, body.keys.auth
    subscription.user_agent = user_agent[:300]
    if body.disclosure:
        record_consents(
            session=session,
            customer=session.get_one(Customer, customer_id),
            consents={Channel.push: True},
            source="card-page",
            disclosure=body.disclosure,
            ip_address=ip_address,
        )
    session.flush()
    return subscription


def unsubscribe(*, session: Session, customer_id: int, endpoint: str) -> None:
    subscription = session.scalar(
        select(PushSubscription).where(
            PushSubscription.endpoint == endpoint, PushSubscription.customer_id == customer_id
        )
    )
    if subscription is None:
        raise NotFound("This browser has no push subscription on your card.")
    session.delete(subscription)
    session.flush()


# --- voice recordings --------------------------------------------------------------------------------


def store_recording(
    *, session: Session, data: bytes, content_type: str, title: str, created_by_id: int | None
) -> VoiceRecording:
    if content_type not in AUDIO_TYPES:
        raise Unprocessable(f"Upload MP3, WAV or Ogg audio, not {content_type or 'an unnamed type'}.", field="file")
    if not data:
        raise Unprocessable("The uploaded file is empty.", field="file")
    recording = VoiceRecording(
        token=secrets.token_urlsafe(24),
        title=title[:120],
        content_type=content_type,
        data=data,
        created_by_id=created_by_id,
        created_at=utcnow(),
    )
    session.add(recording)
    session.flush()
    return recording


def recording_by_token(*, session: Session, token: str) -> VoiceRecording:
    recording = session.scalar(select(VoiceRecording).where(VoiceRecording.token == token))
    if recording is None:
        raise NotFound("There is no such recording.")
    return recording


def recording_path(recording: VoiceRecording) -> str:
    return f"/media/voice/{recording.token}.{AUDIO_TYPES[recording.content_type]}"


# --- provider callbacks ----------------------------------------------------------------------------

SMS_STATUS = {
    "sent": MessageState.sent,
    "delivered": MessageState.delivered,
    "read": MessageState.delivered,
    "undelivered": MessageState.failed,
    "failed": MessageState.failed,
    "canceled": MessageState.failed,
}
CALL_STATUS = {
    "completed": MessageState.delivered,
    "busy": MessageState.failed,
    "no-answer": MessageState.failed,
    "failed": MessageState.failed,
    "canceled": MessageState.failed,
}


def find_message(session: Session, *, message_id: str | None, provider_id: str | None, channel: str) -> Message | None:
    """The row a callback is about: by our id in the callback URL, else by the provider's id."""
    message = None
    if message_id and message_id.isdigit():
        message = session.get(Message, int(message_id), with_for_update=True)
    elif provider_id:
        message = session.scalar(select(Message).where(Message.provider_id == provider_id).with_for_update())
    if message is None or message.channel != channel:
        return None
    if message.provider_id and provider_id and message.provider_id != provider_id:
        return None  # about an earlier attempt's copy, which this row no longer tracks
    return message


def record_status(
    session: Session, message: Message, *, provider_id: str | None, new: MessageState | None, error: str | None = None
) -> None:
    """Move the row forward with what the provider reports (never back, never out of failed)."""
    if provider_id and not message.provider_id:
        # Recorded even before the worker does: a worker that dies now must not send it again.
        message.provider_id = provider_id
    if new is None or message.state in (MessageState.failed, MessageState.suppressed):
        return
    if new is MessageState.failed:
        message.state, message.error, message.lease_until = MessageState.failed, error, None
        return
    if PROGRESS[new] > PROGRESS.get(message.state, 0):
        message.state, message.lease_until = new, None
        message.sent_at = message.sent_at or utcnow()
        if new is MessageState.delivered:
            message.delivered_at = utcnow()
            events.message_delivered.send(message, at=message.delivered_at)


def sms_status(
    *, session: Session, message_id: str | None, sid: str, status: str, error_code: str | None
) -> Message | None:
    message = find_message(session, message_id=message_id, provider_id=sid, channel="sms")
    if message is None:
        return None
    new = SMS_STATUS.get(status)
    if error_code == str(OPTED_OUT) and message.customer_id is not None:
        revoke_consent(
            session=session,
            customers=[session.get_one(Customer, message.customer_id)],
            channels=[Channel.sms],
            source="provider:twilio-21610",
            note="Twilio 21610: the recipient opted out",
        )
        record_status(session, message, provider_id=sid, new=None)
        message.state, message.reason = MessageState.suppressed, "recipient opted out (Twilio 21610)"
        return message
    error = f"Twilio {status} (error {error_code})" if error_code else f"Twilio {status}"
    record_status(session, message, provider_id=sid, new=new, error=error)
    session.flush()
    return message


def call_answered(*, session: Session, message_id: str | None, call_sid: str, answered_by: str) -> Message | None:
    message = find_message(session, message_id=message_id, provider_id=call_sid, channel="voice")
    if message is None:
        return None
    message.details = {**(message.details or {}), "answered_by": answered_by}
    record_status(session, message, provider_id=call_sid, new=None)
    session.flush()
    return message


def call_status(*, session: Session, message_id: str | None, call_sid: str, status: str) -> Message | None:
    message = find_message(session, message_id=message_id, provider_id=call_sid, channel="voice")
    if message is None:
        return None
    record_status(session, message, provider_id=call_sid, new=CALL_STATUS.get(status), error=f"call {status}")
    session.flush()
    return message
