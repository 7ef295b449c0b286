"""From a campaign (or a sequence step) to outbox rows: pick each customer's channel, queue, pay the bonus.

Fallback is decided when the message is queued: the customer gets the first channel of the
campaign's list they can be reached on (wallet message -> push -> SMS -> voicemail). The
outbox checks consent, quiet hours and caps again at send time, and what it suppresses shows
in the results with its reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.campaigns.models import Campaign, CampaignTarget
from app.db import Base
from app.loyalty.ledger import credit, expiry_for, lock_customer
from app.loyalty.models import Card, Channel, Consent, Customer, EntryKind, Reward
from app.messaging.content import MessageRejected, customer_fields, render
from app.messaging.models import Message
from app.messaging.outbox import enqueue

CHANNELS = ("wallet", "push", "sms", "voice", "email")
# The opt-in each channel needs. A wallet message notifies the phone like a push, so it needs
# the push opt-in too.
CONSENT = {
    "wallet": Channel.push,
    "push": Channel.push,
    "sms": Channel.sms,
    "voice": Channel.voice,
    "email": Channel.email,
}
SAMPLE_FIELDS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "name": "Ada Lovelace",
    "member_number": "1234567",
    "points": 420,
    "tier": "Silver",
    "program": "Pointcard",
}


def in_holdout(*, campaign_id: int, customer_id: int, percent: float) -> bool:
    """Random, and stable per customer and campaign: the same answer on every run and retry."""
    digest = hashlib.sha256(f"holdout:{campaign_id}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < round(percent * 100)


def variables(*, campaign_name: str, bonus_points: int, reward: Reward | None) -> dict:
    return {"campaign": campaign_name, "bonus_points": bonus_points, "reward": reward.name if reward else ""}


def check_templates(templates: dict, *, campaign_name: str, bonus_points: int, reward: Reward | None) -> None:
    """Render each template with sample fields, so a typo is a 422 now rather than a failed send later."""
    context = {**SAMPLE_FIELDS, **variables(campaign_name=campaign_name, bonus_points=bonus_points, reward=reward)}
    for channel, template in templates.items():
        try:
            render({key: value for key, value in template.items() if value}, context)
        except MessageRejected as exc:
            raise MessageRejected(
                f"The {channel} template does not render: {exc.detail}", field=f"templates.{channel}"
            ) from exc


# --- who can be reached where ----------------------------------------------------------------


def _granted(session: Session, customer_ids: list[int]) -> dict[int, set[str]]:
    latest = (
        select(func.max(Consent.id))
        .where(Consent.customer_id.in_(customer_ids))
        .group_by(Consent.customer_id, Consent.channel)
    )
    granted: dict[int, set[str]] = {}
    for customer_id, channel in session.execute(
        select(Consent.customer_id, Consent.channel).where(Consent.id.in_(latest), Consent.granted.is_(True))
    ):
        granted.setdefault(customer_id, set()).add(Channel(channel).value)
    return granted


def _with_push_subscription(session: Session, customer_ids: list[int]) -> set[int] | None:
    """Customers with a Web Push subscription; None when this deployment has no such table."""
    table = Base.metadata.tables.get("push_subscriptions")
    if table is None:
        return None
    return set(session.scalars(select(table.c.customer_id).where(table.c.customer_id.in_(customer_ids))))


def reachable(session: Session, customer_ids: Iterable[int], channels: list[str]) -> dict[int, list[str]]:
    """For each customer, the campaign's channels they can be reached on, in fallback order."""
    ids = list(customer_ids)
    if not ids:
        return {}
    granted = _granted(session, ids)
    # Whether there is a number or an address is all this needs: the blind indexes say so
    # without decrypting anything.
    contacts = {
        row.id: row
        for row in session.execute(
            select(Customer.id, Customer.phone_index.label("phone"), Customer.email_index.label("email")).where(
                Customer.id.in_(ids)
            )
        )
    }
    subscribed = _with_push_subscription(session, ids) if "push" in channels else None
    result = {}
    for customer_id in ids:
        contact, consents = contacts[customer_id], granted.get(customer_id, set())

        def can(channel: str) -> bool:
            if CONSENT[channel].value not in consents:
                return False
            if channel in ("sms", "voice"):
                return bool(contact.phone)
            if channel == "email":
                return bool(contact.email)
            return channel != "push" or subscribed is None or customer_id in subscribed

        result[customer_id] = [channel for channel in channels if can(channel)]
    return result


# --- queueing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    channel: str | None
    message_id: int | None
    skip_reason: str | None


def _content(channel: str, template: dict, campaign_name: str) -> dict:
    title, body = template.get("title") or campaign_name, template["body"]
    return {
        "push": {"title": title, "body": body},
        "sms": {"body": body},
        "voice": {"script": body},
        "email": {"subject": title, "body": body},
    }[channel]


def _wallet(
    session: Session, *, customer_id: int, template: dict, context: dict, key: str, fields: dict | None
) -> int | None:
    """A message on the card in Google Wallet; None when the card is not in Google Wallet."""
    from app.wallet.google.service import send_wallet_message

    card = session.scalar(select(Card).where(Card.customer_id == customer_id))
    text = render(
        {"header": template.get("title") or context["campaign"], "body": template["body"]},
        {**context, **(fields if fields is not None else customer_fields(session, customer_id))},
    )
    if card is None or not send_wallet_message(
        session=session, card=card, header=text["header"], body=text["body"], dedupe_key=key
    ):
        return None
    return session.scalar(
        select(Message.id)
        .where(Message.customer_id == customer_id, Message.dedupe_key.endswith(f":{key}"))
        .order_by(Message.id.desc())
    )


def deliver(
    *,
    session: Session,
    customer_id: int,
    channels: list[str],
    templates: dict,
    context: dict,
    key: str,
    now: datetime,
    template_name: str,
    fields: dict | None = None,
) -> Delivery:
    """Queue the message on the first channel that takes it; `channels` are the reachable ones.
    `fields`: the customer's template fields, when the caller loaded a batch's at once."""
    for channel in channels:
        if channel == "wallet":
            message_id = _wallet(
                session, customer_id=customer_id, template=templates[channel], context=context, key=key, fields=fields
            )
            if message_id is not None:
                return Delivery(channel, message_id, None)
            continue  # not in Google Wallet: the next channel
        try:
            message_id = enqueue(
                session=session,
                customer_id=customer_id,
                channel=channel,
                content=_content(channel, templates[channel], context["campaign"]),
                dedupe_key=key,
                template=template_name,
                not_before=now,
                variables=context,
                fields=fields,
            )
        except MessageRejected as exc:
            return Delivery(channel, None, f"rejected: {exc.detail}"[:64])
        if message_id is None:  # queued before (a retried batch)
            message_id = session.scalar(select(Message.id).where(Message.dedupe_key == key))
        return Delivery(channel, message_id, None)
    return Delivery(None, None, "no consented channel")


def pay_bonus(*, session: Session, customer_id: int, points: int, reason: str, now: datetime) -> None:
    if points <= 0:
        return
    customer = lock_customer(session=session, customer_id=customer_id)
    credit(
        session=session,
        customer=customer,
        kind=EntryKind.bonus,
        points=points,
        at=now,
        reason=reason[:200],
        expires_at=expiry_for(earned_at=now, expiry_months=customer.program.expiry_months),
    )


def queue_target(
    *,
    session: Session,
    target: CampaignTarget,
    campaign: Campaign,
    channels: list[str],
    templates: dict,
    bonus: int,
    context: dict,
    key: str,
    now: datetime,
    fields: dict | None = None,
) -> None:
    """Queue the target's message and pay the bonus if it went out; record what happened on the target."""
    sent = deliver(
        session=session,
        customer_id=target.customer_id,
        channels=channels,
        templates=templates,
        context=context,
        key=key,
        now=now,
        template_name=f"campaign:{campaign.id}",
        fields=fields,
    )
    target.channel, target.message_id, target.skip_reason = sent.channel, sent.message_id, sent.skip_reason
    if sent.message_id is not None and bonus:
        pay_bonus(
            session=session, customer_id=target.customer_id, points=bonus, now=now, reason=f"campaign: {campaign.name}"
        )
        target.bonus_points = bonus
