"""Loyalty changes -> Google Wallet object patches, queued in the same transaction as the change.

Balance and tier changes arrive as loyalty events. A rotated barcode, a closed card or a new
name raises no event, yet the pass must show it (a stale barcode is refused at the till), so
those are picked up from the session: remembered at flush, queued just before commit.
Connected once, at import (module-level functions: blinker keeps weak references).
"""

from __future__ import annotations

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, SessionTransaction, object_session

from app.db import utcnow
from app.loyalty import events
from app.loyalty.models import Card, Customer, LedgerEntry
from app.loyalty.service import available_rewards
from app.wallet.google.service import note_change, wallet_object_of

_SHOWN = {Card: ("barcode_token", "status", "access_token"), Customer: ("first_name", "last_name")}
_PENDING = "google_wallet.changed_customers"


def _changed(session: Session, customer_id: int, *, notify) -> None:
    row_id = wallet_object_of(session=session, customer_id=customer_id)
    if row_id is not None:  # else the customer never asked for the card in Google Wallet
        note_change(session=session, object_row_id=row_id, customer_id=customer_id, notify=notify())


def _crosses_a_reward(customer: Customer, previous_balance: int) -> bool:
    """Did this credit make a reward affordable that was not before? Worth a notification."""
    rewards = available_rewards(session=object_session(customer), program=customer.program, now=utcnow())
    return any(previous_balance < reward.points_cost <= customer.points_balance for reward in rewards)


@events.balance_changed.connect
def on_balance_changed(customer: Customer, *, entry: LedgerEntry, previous_balance: int, **_) -> None:
    _changed(object_session(customer), customer.id,
             notify=lambda: entry.points > 0 and _crosses_a_reward(customer, previous_balance))


@events.tier_changed.connect
def on_tier_changed(customer: Customer, **_) -> None:
    _changed(object_session(customer), customer.id, notify=lambda: True)


def _customers_shown_changed(objects) -> set[int]:
    changed = set()
    for obj in objects:
        fields = _SHOWN.get(type(obj))
        if fields and any(inspect(obj).attrs[name].history.has_changes() for name in fields):
            changed.add(obj.customer_id if isinstance(obj, Card) else obj.id)
    return changed


@event.listens_for(Session, "before_flush")
def _remember_shown_changes(session: Session, _flush_context, _instances) -> None:
    changed = _customers_shown_changed(session.dirty)
    if changed:
        session.info.setdefault(_PENDING, set()).update(changed)


@event.listens_for(Session, "before_commit")
def _queue_shown_changes(session: Session) -> None:
    # What is still unflushed is looked at here: commit's own flush comes after this hook.
    changed = session.info.pop(_PENDING, set()) | _customers_shown_changed(session.dirty)
    for customer_id in sorted(changed):
        _changed(session, customer_id, notify=lambda: False)


@event.listens_for(Session, "after_transaction_end")
def _forget_on_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
