"""A customer's data: all of it out (export), or the personal part gone (erasure); key rotation.

Erasure keeps what the books need and nothing that names a person: ledger entries, purchases,
redemptions and campaign targets stay (amounts and dates under an anonymous customer id), so
balances, programme totals and campaign results do not move; names, contacts, positions, push
subscriptions, rendered message bodies and profiling rows go.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, Text, cast, delete, func, select, type_coerce, update
from sqlalchemy.orm import Session

from app import encryption
from app.campaigns.models import CampaignTarget, CustomerScore, CustomerTag, Enrollment, EnrollmentState
from app.db import Base, rowcount, table_of, utcnow
from app.geo.models import GeoOfferDelivery, LocationPing
from app.loyalty.ledger import lock_customer
from app.loyalty.models import Card, Consent, Customer, LedgerEntry, Purchase, Redemption, Referral
from app.loyalty.service import close_card
from app.messaging.models import Message, MessageState, PushSubscription
from app.privacy import events
from app.wallet.apple.models import AppleDeviceRegistration, ApplePass
from app.wallet.google.models import GoogleWalletObject

# Security material, not personal data: a copy of it in an export file would only be a risk.
_SECRETS = {"access_token", "authentication_token", "p256dh", "auth", "push_token", "barcode_token"}
_CONTACT_INDEXES = {"email_index", "phone_index"}
ERASED_REASON = "customer erased"


def _row(obj: Base, *, leave_out: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    return {
        column.key: getattr(obj, column.key)
        for column in obj.__mapper__.column_attrs
        if column.key not in _SECRETS | _CONTACT_INDEXES | set(leave_out)
    }


def _all(session: Session, model: type[Base], *where, order=None) -> list[dict[str, Any]]:
    rows = session.scalars(select(model).where(*where).order_by(order if order is not None else table_of(model).c.id))
    return [_row(row) for row in rows]


# --- export --------------------------------------------------------------------------------------


def export_customer(*, session: Session, customer_id: int) -> dict[str, Any]:
    """Everything stored about the customer, and nothing about anyone else."""
    customer = session.get_one(Customer, customer_id)
    return {
        "exported_at": utcnow(),
        "profile": _profile(customer),
        "consents": _all(session, Consent, Consent.customer_id == customer_id),
        "ledger": _all(session, LedgerEntry, LedgerEntry.customer_id == customer_id),
        "purchases": _all(session, Purchase, Purchase.customer_id == customer_id),
        "redemptions": _all(session, Redemption, Redemption.customer_id == customer_id),
        "referrals": _referrals(session, customer_id),
        "messages": _all(session, Message, Message.customer_id == customer_id),
        "locations": _all(session, LocationPing, LocationPing.customer_id == customer_id),
        "offers_received": _all(session, GeoOfferDelivery, GeoOfferDelivery.customer_id == customer_id),
        "push_subscriptions": _all(session, PushSubscription, PushSubscription.customer_id == customer_id),
        "wallets": _wallets(session, customer.card),
        "marketing": _marketing(session, customer_id),
    }


def _profile(customer: Customer) -> dict[str, Any]:
    profile = _row(customer, leave_out={"referred_by_id", "tier_override_id", "tier_id"})
    profile.update(
        program=customer.program.name,
        tier=customer.tier.name if customer.tier else None,
        card=_row(customer.card, leave_out={"customer_id"}),
    )
    return profile


def _referrals(session: Session, customer_id: int) -> list[dict[str, Any]]:
    """That a referral happened and when; the other customer is not this customer's data."""
    rows = session.scalars(
        select(Referral)
        .where((Referral.referrer_id == customer_id) | (Referral.referee_id == customer_id))
        .order_by(Referral.id)
    )
    return [
        {
            "role": "referrer" if row.referrer_id == customer_id else "referred",
            "created_at": row.created_at,
            "rewarded_at": row.rewarded_at,
        }
        for row in rows
    ]


def _wallets(session: Session, card: Card) -> dict[str, Any]:
    apple = session.scalar(select(ApplePass).where(ApplePass.card_id == card.id))
    google = session.scalar(select(GoogleWalletObject).where(GoogleWalletObject.card_id == card.id))
    devices = (
        [] if apple is None else _all(session, AppleDeviceRegistration, AppleDeviceRegistration.pass_id == apple.id)
    )
    return {
        "apple_pass": None if apple is None else {**_row(apple, leave_out={"card_id"}), "devices": devices},
        "google_object": None if google is None else _row(google, leave_out={"card_id"}),
    }


def _marketing(session: Session, customer_id: int) -> dict[str, Any]:
    return {
        "tags": _all(session, CustomerTag, CustomerTag.customer_id == customer_id),
        "scores": _all(session, CustomerScore, CustomerScore.customer_id == customer_id, order=CustomerScore.as_of),
        "campaigns": _all(session, CampaignTarget, CampaignTarget.customer_id == customer_id),
        "sequences": _all(session, Enrollment, Enrollment.customer_id == customer_id),
    }


# --- erasure -------------------------------------------------------------------------------------


def erase_customer(*, session: Session, customer_id: int, now: datetime | None = None) -> Customer:
    """Forget who the customer is; keep the anonymous amounts. Idempotent.

    The order matters: waiting messages are cancelled before the card is closed, so the
    wallet updates that closing queues (the voided Apple pass, the inactive Google object)
    are the ones that still go out.
    """
    now = now or utcnow()
    customer = lock_customer(session=session, customer_id=customer_id)
    if customer.erased_at is not None:
        return customer
    _cancel_and_blank_messages(session, customer_id)
    for model in (LocationPing, GeoOfferDelivery, PushSubscription, CustomerTag, CustomerScore):
        session.execute(delete(model).where(model.customer_id == customer_id))
    session.execute(
        update(Enrollment)
        .where(Enrollment.customer_id == customer_id, Enrollment.state == EnrollmentState.active)
        .values(state=EnrollmentState.exited, ended_at=now)
    )
    # The consent rows stay as the record of what was agreed; the address it came from goes.
    session.execute(update(Consent).where(Consent.customer_id == customer_id).values(ip_address=None))
    customer.first_name, customer.last_name, customer.timezone = "", "", None
    customer.email, customer.phone = None, None
    customer.erased_at = now
    close_card(session=session, card=customer.card)
    events.customer_erased.send(customer)
    return customer


def _cancel_and_blank_messages(session: Session, customer_id: int) -> None:
    # A row a worker holds right now (sending) is left to finish; retention blanks it later.
    session.execute(
        update(Message)
        .where(Message.customer_id == customer_id, Message.state == MessageState.queued)
        .values(state=MessageState.suppressed, reason=ERASED_REASON, lease_until=None)
    )
    session.execute(
        update(Message)
        .where(Message.customer_id == customer_id, Message.state != MessageState.sending)
        .values(content={}, details={}, error=None)
    )


# --- retention -----------------------------------------------------------------------------------


def blank_old_message_bodies(*, session: Session, now: datetime, days: int) -> int:
    """Empty the rendered bodies of finished messages older than `days`; the rows stay for counts."""
    finished = (MessageState.sent, MessageState.delivered, MessageState.failed, MessageState.suppressed)
    not_blank = (cast(Message.content, Text) != "{}") | (cast(Message.details, Text) != "{}")  # JSON has no =
    return rowcount(
        session.execute(
            update(Message)
            .where(Message.created_at < now - timedelta(days=days), Message.state.in_(finished), not_blank)
            .values(content={}, details={}, error=None)
            .execution_options(synchronize_session=False)
        )
    )


# --- key rotation --------------------------------------------------------------------------------


def _stale(column, key_id: str):
    """The stored text is not under this key (read as text: the key id is in the value)."""
    stored = type_coerce(column, String)
    return stored.is_not(None) & ~stored.startswith(f"{encryption.VERSION}.{key_id}.", autoescape=True)


def stale_ids(*, session: Session, after_id: int, limit: int) -> list[int]:
    """Ids of customers with a contact field not under the current key, in id order."""
    table, key_id = table_of(Customer), encryption.keyring().current_key_id
    return list(
        session.scalars(
            select(table.c.id)
            .where(table.c.id > after_id, _stale(table.c.email, key_id) | _stale(table.c.phone, key_id))
            .order_by(table.c.id)
            .limit(limit)
        )
    )


def count_stale(*, session: Session) -> int:
    table, key_id = table_of(Customer), encryption.keyring().current_key_id
    return session.execute(
        select(func.count()).select_from(table).where(_stale(table.c.email, key_id) | _stale(table.c.phone, key_id))
    ).scalar_one()


def reencrypt(*, session: Session, customer_ids: list[int]) -> None:
    """Write the contact fields again: the column type encrypts them with the current key.

    The blind indexes do not change (same values, same index key)."""
    table = table_of(Customer)
    for row_id, email, phone in session.execute(
        select(table.c.id, table.c.email, table.c.phone).where(table.c.id.in_(customer_ids))
    ):
        session.execute(update(table).where(table.c.id == row_id).values(email=email, phone=phone))
