"""Wallet cards refreshed when what they show near stores changes: the geo domain's events land here.

Each card lists the stores nearest its customer with their offers (app/wallet/locations.py), so
a changed offer refreshes every card of the program (in committed batches, by a job) and a
customer seen somewhere new gets their own cards refreshed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.loyalty.models import Card, Customer
from app.wallet.apple.models import ApplePass
from app.wallet.apple.service import passes_changed
from app.wallet.google.models import GoogleWalletObject
from app.wallet.google.service import note_change, wallet_object_of
from app.wallet.models import WalletRefresh


def offers_changed(session: Session, *, program_id: int) -> None:
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


def customer_moved(session: Session, *, customer_id: int) -> None:
    object_id = wallet_object_of(session=session, customer_id=customer_id)
    _refresh(session, [customer_id], [] if object_id is None else [(object_id, customer_id)])


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
    _refresh(session, list(apple), [(object_id, customer_id) for object_id, customer_id in google])
    if card_ids:
        refresh.cursor = card_ids[-1]
    if len(card_ids) < size:
        refresh.done_at = utcnow()
    return refresh.done_at is not None


def _refresh(session: Session, apple_customer_ids: list[int], google_objects: list[tuple[int, int]]) -> None:
    if apple_customer_ids:
        passes_changed(session=session, customer_ids=apple_customer_ids)
    for object_row_id, customer_id in google_objects:
        note_change(session=session, object_row_id=object_row_id, customer_id=customer_id, notify=False)
