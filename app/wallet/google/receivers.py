"""Loyalty changes -> Google Wallet object patches, queued in the same transaction as the change.

Balance, tier and card changes (a rotated barcode, a closed card: a stale barcode is refused at
the till, a closed card must show as such) arrive as loyalty events (connected in `app/wiring.py`).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db import session_of, utcnow
from app.loyalty.models import Customer, LedgerEntry
from app.loyalty.service import available_rewards
from app.wallet.google.service import note_change, wallet_object_of


def _changed(session: Session, customer_id: int, *, notify) -> None:
    row_id = wallet_object_of(session=session, customer_id=customer_id)
    if row_id is not None:  # else the customer never asked for the card in Google Wallet
        note_change(session=session, object_row_id=row_id, customer_id=customer_id, notify=notify())


def _crosses_a_reward(customer: Customer, previous_balance: int) -> bool:
    """Did this credit make a reward affordable that was not before? Worth a notification."""
    rewards = available_rewards(session=session_of(customer), program=customer.program, now=utcnow())
    return any(previous_balance < reward.points_cost <= customer.points_balance for reward in rewards)


def on_balance_changed(customer: Customer, *, entry: LedgerEntry, previous_balance: int, **_) -> None:
    _changed(
        session_of(customer),
        customer.id,
        notify=lambda: entry.points > 0 and _crosses_a_reward(customer, previous_balance),
    )


def on_tier_changed(customer: Customer, **_) -> None:
    _changed(session_of(customer), customer.id, notify=lambda: True)


def on_card_changed(customer: Customer, **_) -> None:
    _changed(session_of(customer), customer.id, notify=lambda: False)
