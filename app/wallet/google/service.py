"""Google Wallet for a card: its class and object rows, payloads, changes, messages, callbacks.

Functions take a session and flush, never commit, and never talk to Google: updates and
messages leave through the outbox (the save link's own REST calls are in save_link.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.db import insert_unless_exists, utcnow
from app.loyalty.models import Card, CardStatus, Customer, Program, Store
from app.loyalty.service import available_rewards
from app.messaging.models import Message, MessageState
from app.messaging.outbox import enqueue
from app.wallet.google.models import GoogleWalletCallbackNonce, GoogleWalletClass, GoogleWalletObject
from app.wallet.google.payloads import (
    BARCODE_TYPES,
    MAX_MERCHANT_LOCATIONS,
    class_id_for,
    object_id_for,
    payload_hash,
    render_class,
    render_object,
)
from app.wallet.google.schemas import SignedMessage
from app.wallet.google.wallet import GoogleWallet
from app.wallet.locations import nearby_places

log = logging.getLogger("pointcard.google_wallet")

CHANNEL = "google_wallet"


# --- rows ------------------------------------------------------------------------------------


def _insert_ignoring_conflict(session: Session, model, values: dict, unique: list[str]) -> bool:
    """Insert unless a row with the same unique columns exists; True when this one went in."""
    statement = insert_unless_exists(session.get_bind().dialect.name, model.__table__, unique)
    return session.execute(statement.values(**values)).first() is not None


def _get_or_create(session: Session, model, key: dict, values: dict):
    # Two first clicks on the same save link race here; the unique key lets one row win.
    row = session.scalar(select(model).filter_by(**key))
    if row is None:
        _insert_ignoring_conflict(session, model, {**key, **values, "created_at": utcnow()}, list(key))
        row = session.scalar(select(model).filter_by(**key))
    return row


def class_row(*, session: Session, program: Program, wallet: GoogleWallet) -> GoogleWalletClass:
    return _get_or_create(
        session,
        GoogleWalletClass,
        {"program_id": program.id},
        {"class_id": class_id_for(wallet.issuer_id, program.slug), "inserted_in_google": False},
    )


def object_row(*, session: Session, card: Card, wallet: GoogleWallet) -> GoogleWalletObject:
    values = {
        "object_id": object_id_for(wallet.issuer_id, card.member_number),
        "inserted_in_google": False,
        "in_wallet": False,
        "version": 0,
        "notify_version": 0,
        "notified_version": 0,
    }
    return _get_or_create(session, GoogleWalletObject, {"card_id": card.id}, values)


# --- payloads --------------------------------------------------------------------------------


def class_payload(*, session: Session, program: Program, wallet: GoogleWallet) -> dict:
    stores = session.scalars(
        select(Store)
        .where(Store.program_id == program.id, Store.active.is_(True))
        .order_by(Store.id)
        .limit(MAX_MERCHANT_LOCATIONS)
    ).all()
    context = {
        "class_id": class_id_for(wallet.issuer_id, program.slug),
        "issuer_name": wallet.settings.issuer_name or program.name,
        "program": program,
        "logo_url": wallet.logo_url(program.slug),
        "callback_url": wallet.callback_url,
        "locations": [{"latitude": store.latitude, "longitude": store.longitude} for store in stores],
    }
    return render_class(wallet.settings.templates_dir, program.slug, context)


def _next_reward(*, session: Session, customer: Customer, now: datetime) -> str | None:
    rewards = available_rewards(session=session, program=customer.program, now=now)
    affordable = [reward for reward in rewards if reward.points_cost <= customer.points_balance]
    if affordable:
        return f"Ready to redeem: {affordable[-1].name}"
    if rewards:
        return f"{rewards[0].name} in {rewards[0].points_cost - customer.points_balance} points"
    return None


def object_payload(*, session: Session, card: Card, wallet: GoogleWallet, now: datetime | None = None) -> dict:
    """The card as a LoyaltyObject, from the database as it is now."""
    customer = card.customer
    program = customer.program
    places = nearby_places(session=session, customer=customer, limit=MAX_MERCHANT_LOCATIONS)
    context = {
        "object_id": object_id_for(wallet.issuer_id, card.member_number),
        "class_id": class_id_for(wallet.issuer_id, program.slug),
        "state": "ACTIVE" if card.status is CardStatus.active else "INACTIVE",
        "member_number": card.member_number,
        "name": customer.display_name,
        "balance": customer.points_balance,
        "tier": customer.tier.name if customer.tier else None,
        "barcode": {"type": BARCODE_TYPES[program.barcode_format], "value": card.barcode_token},
        "next_reward": _next_reward(session=session, customer=customer, now=now or utcnow()),
        "card_url": wallet.card_url(card.access_token),
        "locations": [{"latitude": store.latitude, "longitude": store.longitude} for store, _ in places],
        # The nearest store's open offer: Google shows one notification per place, not a text each.
        "offer": next((f"{store.name}: {text}" for store, text in places if text), None),
    }
    return render_object(wallet.settings.templates_dir, program.slug, context)


def mark_class_synced(*, cls: GoogleWalletClass, payload: dict, response: dict, now: datetime) -> None:
    cls.inserted_in_google = True
    cls.payload_hash = payload_hash(payload)
    cls.review_status = response.get("reviewStatus") or cls.review_status
    cls.synced_at = now


# --- changes and messages --------------------------------------------------------------------


def wallet_object_of(*, session: Session, customer_id: int) -> int | None:
    """The customer's card's object row, if they ever asked for the card in Google Wallet."""
    return session.scalar(
        select(GoogleWalletObject.id)
        .join(Card, Card.id == GoogleWalletObject.card_id)
        .where(Card.customer_id == customer_id)
    )


def note_change(*, session: Session, object_row_id: int, customer_id: int, notify: bool) -> int:
    """The card changed: bump its object's version and queue a patch; the new version.

    The patch is built when it is sent, from the database as it is then, so a retry or a
    later patch always sends the newest balance.
    """
    bumped = {"version": GoogleWalletObject.version + 1}
    if notify:
        bumped["notify_version"] = GoogleWalletObject.version + 1
    version = session.execute(
        update(GoogleWalletObject)
        .where(GoogleWalletObject.id == object_row_id)
        .values(**bumped)
        .returning(GoogleWalletObject.version)
    ).scalar_one()
    if not _patch_waiting(session=session, customer_id=customer_id, object_row_id=object_row_id):
        queue_patch(session=session, customer_id=customer_id, object_row_id=object_row_id, version=version)
    return version


def _patch_waiting(*, session: Session, customer_id: int, object_row_id: int) -> bool:
    """Is a patch of this object queued and not yet taken by a worker? It will send this change too.

    A worker that takes it meanwhile reads the object under its row lock, which the version
    bump above holds until commit, so it cannot read the state from before this change.
    """
    return (
        session.scalar(
            select(Message.id)
            .where(
                Message.customer_id == customer_id,
                Message.channel == CHANNEL,
                Message.state == MessageState.queued,
                Message.dedupe_key.startswith(f"google_wallet:patch:{object_row_id}:", autoescape=True),
            )
            .limit(1)
        )
        is not None
    )


def queue_patch(
    *,
    session: Session,
    customer_id: int | None,
    object_row_id: int,
    version: int,
    force: bool = False,
    suffix: str = "",
) -> None:
    enqueue(
        session=session,
        customer_id=customer_id,
        channel=CHANNEL,
        template="google_wallet.patch_object",
        content={"op": "patch_object", "object_row_id": object_row_id, "version": version, "force": force},
        dedupe_key=f"google_wallet:patch:{object_row_id}:v{version}{suffix}",
    )


# --- callbacks -------------------------------------------------------------------------------


def record_callback(*, session: Session, message: SignedMessage, now: datetime | None = None) -> str:
    """Apply a verified save/delete once: 'recorded', or why not ('expired', 'duplicate', 'unknown-object')."""
    now = now or utcnow()
    expires_at = datetime.fromtimestamp(message.exp_time_millis / 1000, UTC)
    if expires_at <= now:
        return "expired"
    # Nonces of expired messages can go: those messages are refused by their expiry.
    session.execute(delete(GoogleWalletCallbackNonce).where(GoogleWalletCallbackNonce.expires_at <= now))
    if not _insert_ignoring_conflict(
        session,
        GoogleWalletCallbackNonce,
        {"nonce": message.nonce, "expires_at": expires_at, "received_at": now},
        ["nonce"],
    ):
        return "duplicate"
    obj = session.scalar(select(GoogleWalletObject).where(GoogleWalletObject.object_id == message.object_id))
    if obj is None:
        log.warning("Google Wallet callback for unknown object %s", message.object_id)
        return "unknown-object"
    _apply_event(obj, message.event_type, now)
    session.flush()
    return "recorded"


def _apply_event(obj: GoogleWalletObject, event_type: str, now: datetime) -> None:
    if event_type == "save":
        obj.in_wallet, obj.saved_at, obj.inserted_in_google = True, now, True
    else:
        obj.in_wallet, obj.deleted_at = False, now
