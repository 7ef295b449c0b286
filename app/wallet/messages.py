"""The outbox's "wallet" channel: a message shown on the customer's card in their phone wallet.

Google Wallet shows it as an addMessage on the loyalty object (TEXT_AND_NOTIFY while under
Google's daily cap of notifications); Apple Wallet's comes with the wallets issue. It notifies
the phone, so it is marketing with the push opt-in: quiet hours and caps apply as to a push.
Campaigns and geofenced offers queue it like any other channel; this package knows which
customers it reaches and sends it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.loyalty.models import Card
from app.messaging.models import Message
from app.messaging.outbox import enqueue
from app.wallet.google.models import GoogleWalletObject
from app.wallet.google.sender import GoogleWalletSender

if TYPE_CHECKING:
    from app.wiring import Services

CHANNEL = "wallet"


def audience(session: Session, customer_ids: list[int]) -> set[int]:
    """Those of the customers whose card is in a wallet that takes messages (Google Wallet: an
    object made for the card and not deleted from the wallet since)."""
    return set(
        session.scalars(
            select(Card.customer_id)
            .join(GoogleWalletObject, GoogleWalletObject.card_id == Card.id)
            .where(
                Card.customer_id.in_(customer_ids),
                or_(GoogleWalletObject.deleted_at.is_(None), GoogleWalletObject.in_wallet.is_(True)),
            )
        )
    )


def send_wallet_message(*, session: Session, card: Card, header: str, body: str, dedupe_key: str | None = None) -> bool:
    """Queue a message on the card; False when the card is in no wallet that takes messages.
    `dedupe_key` makes a retried job send it once."""
    if card.customer_id not in audience(session, [card.customer_id]):
        return False
    enqueue(
        session=session,
        customer_id=card.customer_id,
        channel=CHANNEL,
        template="wallet.message",
        content={"header": header, "body": body},
        dedupe_key=dedupe_key or f"wallet:{uuid.uuid4().hex}",
    )
    return True


class WalletMessageSender:
    def __init__(self, google: GoogleWalletSender) -> None:
        self.google = google

    def send(self, message: Message) -> str:
        return self.google.send_card_message(message)


def make_sender(services: Services) -> WalletMessageSender:
    # The Google channel's own sender: one client, one notification budget for both.
    google = services.sender("google_wallet")
    assert isinstance(google, GoogleWalletSender)
    return WalletMessageSender(google)
