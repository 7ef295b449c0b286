"""Geofenced offers in the wallets: the lock-screen text near a store, and pass updates when
offers change."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.geo import events, service
from app.geo.models import GeoOffer, GeoOfferStore
from app.loyalty.models import Card, Customer, Store
from app.wallet.apple import locations
from app.wallet.apple.models import ApplePass
from app.wallet.apple.service import passes_changed

MAX_RELEVANT_TEXT = 120


def offer_texts(session: Session, stores: list[Store]) -> dict[int, str]:
    """Each store's open offer (the newest one if several), as the pass's relevantText."""
    now, texts = utcnow(), {}
    rows = session.execute(
        select(GeoOfferStore.store_id, GeoOffer).join(GeoOffer, GeoOffer.id == GeoOfferStore.offer_id)
        .where(GeoOfferStore.store_id.in_([store.id for store in stores]), GeoOffer.active.is_(True))
        .order_by(GeoOffer.id.desc())
    ).all()
    zones = {store.id: store.timezone for store in stores}
    for store_id, offer in rows:
        if store_id not in texts and service.open_at(offer, zones[store_id], now):
            texts[store_id] = f"{offer.title}: {offer.body}".rstrip(": ")[:MAX_RELEVANT_TEXT]
    return texts


def _offers_changed(session: Session, *, program_id: int) -> None:
    """Every Apple pass of the program gets a new tag and a push: its relevantText may be stale."""
    customer_ids = session.scalars(
        select(Card.customer_id).join(ApplePass, ApplePass.card_id == Card.id)
        .join(Customer, Customer.id == Card.customer_id).where(Customer.program_id == program_id)
    ).all()
    if customer_ids:
        passes_changed(session=session, customer_ids=customer_ids)


locations.register_offer_texts(offer_texts)
events.offers_changed.connect(_offers_changed)
