"""Geofenced offers in the wallets: each card lists the stores nearest its customer with their
offers, so cards are refreshed when offers change or the customer is somewhere new."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.geo import events, service
from app.geo.models import GeoOffer, GeoOfferStore, WalletRefresh
from app.loyalty.models import Card, Customer, Store
from app.wallet import locations
from app.wallet.apple.models import ApplePass
from app.wallet.apple.service import passes_changed
from app.wallet.google.models import GoogleWalletObject
from app.wallet.google.service import note_change, wallet_object_of

MAX_RELEVANT_TEXT = 120


def offer_texts(session: Session, stores: list[Store]) -> dict[int, str]:
    """Each store's open offer (the newest one if several), as the pass's relevantText."""
    now, texts = utcnow(), {}
    rows = session.execute(
        select(GeoOfferStore.store_id, GeoOffer)
        .join(GeoOffer, GeoOffer.id == GeoOfferStore.offer_id)
        .where(GeoOfferStore.store_id.in_([store.id for store in stores]), GeoOffer.active.is_(True))
        .order_by(GeoOffer.id.desc())
    ).all()
    zones = {store.id: store.timezone for store in stores}
    for store_id, offer in rows:
        if store_id not in texts and service.open_at(offer, zones[store_id], now):
            texts[store_id] = f"{offer.title}: {offer.body}".rstrip(": ")[:MAX_RELEVANT_TEXT]
    return texts


def _offers_changed(session: Session, *, program_id: int) -> None:
    """Every wallet card of the program is to be refreshed: a job does it in batches. A refresh
    that has not started yet covers this change too."""
    waiting = session.scalar(
        select(WalletRefresh.id).where(
            WalletRefresh.program_id == program_id, WalletRefresh.done_at.is_(None), WalletRefresh.cursor == 0
        )
    )
    if waiting is None:
        session.add(WalletRefresh(program_id=program_id))
        session.flush()


def refresh_batch(*, session: Session, refresh: WalletRefresh, size: int) -> bool:
    """Refresh the next `size` cards of the program (Apple passes and Google objects); True when done."""
    cards = session.execute(
        select(Card.id, Card.customer_id)
        .join(Customer, Customer.id == Card.customer_id)
        .where(Customer.program_id == refresh.program_id, Card.id > refresh.cursor)
        .order_by(Card.id)
        .limit(size)
    ).all()
    card_ids = [card_id for card_id, _ in cards]
    apple = session.scalars(
        select(Card.customer_id).join(ApplePass, ApplePass.card_id == Card.id).where(Card.id.in_(card_ids))
    ).all()
    google = session.execute(
        select(GoogleWalletObject.id, Card.customer_id)
        .join(Card, Card.id == GoogleWalletObject.card_id)
        .where(Card.id.in_(card_ids))
    ).all()
    _refresh(session, apple, google)
    if card_ids:
        refresh.cursor = card_ids[-1]
    if len(card_ids) < size:
        refresh.done_at = utcnow()
    return refresh.done_at is not None


def _customer_moved(session: Session, *, customer_id: int) -> None:
    object_id = wallet_object_of(session=session, customer_id=customer_id)
    _refresh(session, [customer_id], [] if object_id is None else [(object_id, customer_id)])


def _refresh(session: Session, apple_customer_ids, google_objects) -> None:
    if apple_customer_ids:
        passes_changed(session=session, customer_ids=apple_customer_ids)
    for object_row_id, customer_id in google_objects:
        note_change(session=session, object_row_id=object_row_id, customer_id=customer_id, notify=False)


locations.register_offer_texts(offer_texts)
locations.register_position_source(service.last_location)
events.offers_changed.connect(_offers_changed)
events.customer_moved.connect(_customer_moved)
