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
from app.extensions import services_of
from app.loyalty.ledger import credit, expiry_for, lock_customer
from app.loyalty.models import Channel, Consent, EntryKind, Reward
from app.messaging.content import MessageRejected, render
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


def reachable(session: Session, customer_ids: Iterable[int], channels: list[str]) -> dict[int, list[str]]:
    """For each customer, the campaign's channels they can be reached on, in fallback order: an
    opt-in for the channel and what the channel needs (a number, a subscription, a saved card)."""
    ids = list(customer_ids)
    if not ids:
        return {}
    granted = _granted(session, ids)
    registry = services_of(session).channels
    audiences = {channel: registry.reachable(session, channel, ids) for channel in set(channels)}
    return {
        customer_id: [
            channel
            for channel in channels
            if CONSENT[channel].value in granted.get(customer_id, ()) and customer_id in audiences[channel]
        ]
        for customer_id in ids
    }


# --- queueing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    channel: str | None
    message_id: int | None
    skip_reason: str | None


def _content(channel: str, template: dict, campaign_name: str) -> dict:
    title, body = template.get("title") or campaign_name, template["body"]
    return {
        "wallet": {"header": title, "body": body},
        "push": {"title": title, "body": body},
        "sms": {"body": body},
        "voice": {"script": body},
        "email": {"subject": title, "body": body},
    }[channel]


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
    """Queue the message on the first channel; `channels` are the reachable ones, in fallback order.
    `fields`: the customer's template fields, when the caller loaded a batch's at once."""
    if not channels:
        return Delivery(None, None, "no consented channel")
    channel = channels[0]
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
