"""Customers with consents on record, and outbox reads, for the messaging tests."""

from __future__ import annotations

from sqlalchemy import select

from app.messaging.models import Message
from app.messaging.outbox import enqueue

DISCLOSURE = (
    "Yes, send me Pointcard offers by text, push notification and prerecorded voicemail. "
    "Consent is not a condition of purchase. Reply STOP to opt out."
)
# Quiet hours that never bite: for tests about something else, whatever the wall clock says.
ALL_DAY = {"start": "00:00", "end": "23:59:59.999999"}


def customer(
    world,
    name: str = "Ada Lovelace",
    *,
    phone: str | None = None,
    timezone: str | None = "Europe/Paris",
    consents: tuple[str, ...] = ("sms", "push", "voice"),
    consent_text: str = DISCLOSURE,
) -> int:
    fields = {"consents": dict.fromkeys(consents, True), "consent_text": consent_text}
    if phone:
        fields["phone"] = phone
    if timezone:
        fields["timezone"] = timezone
    return world.enroll(name, **fields)["customer_id"]


def queue(database, *, customer_id: int | None, channel: str, content: dict, key: str, **kwargs) -> int | None:
    with database.transaction() as session:
        return enqueue(
            session=session, customer_id=customer_id, channel=channel, content=content, dedupe_key=key, **kwargs
        )


def messages(database, **filters) -> list[Message]:
    with database.transaction() as session:
        query = select(Message).order_by(Message.id)
        for name, value in filters.items():
            query = query.where(getattr(Message, name) == value)
        return list(session.scalars(query))


def message(database, message_id: int) -> Message:
    with database.transaction() as session:
        return session.get(Message, message_id)
