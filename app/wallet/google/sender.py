"""The outbox's "google_wallet" channel: class syncs, object patches and messages, sent to Google.

Each message names an operation and a row, never a payload: the payload is built when it is
sent, so a retried patch carries the newest balance, not the one of the failed attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from app.db import Database, utcnow
from app.messaging.models import Message
from app.messaging.providers import Undeliverable
from app.wallet.google import sync
from app.wallet.google.providers import NotInGoogle, deadline, upsert_class, upsert_object
from app.wallet.google.service import wallet_object_of
from app.wallet.google.wallet import GoogleWallet

if TYPE_CHECKING:
    from app.wiring import Services

LEASE_MARGIN = timedelta(seconds=2)


class GoogleWalletSender:
    def __init__(self, *, database: Database, wallet: GoogleWallet) -> None:
        self.database = database
        self.wallet = wallet

    def send(self, message: Message) -> str:
        operations: dict[str, Callable[[Message], str]] = {
            "sync_class": self._sync_class,
            "patch_object": self._patch_object,
            "add_message": self._add_message,
        }
        operation = operations.get(str(message.content.get("op")))
        if operation is None:
            raise Undeliverable(f"unknown Google Wallet operation {message.content.get('op')!r}")
        # A send may take several calls (class, object, message); all must end within the
        # lease, or another worker could take the row while this one still talks to Google.
        lease_until = getattr(message, "lease_until", None)
        with deadline(lease_until - LEASE_MARGIN if lease_until else None):
            return operation(message)

    def _sync_class(self, message: Message) -> str:
        with self.database.transaction() as session:
            plan = sync.plan_class(session=session, program_id=message.content["program_id"], wallet=self.wallet)
        if plan is None:
            return "class-up-to-date"
        self._push_class(plan)
        return f"class:{plan.payload['id']}"

    def _push_class(self, plan: sync.ClassPlan | None) -> None:
        if plan is None:
            return
        response = upsert_class(self.wallet.api, plan.payload, exists=plan.exists)
        with self.database.transaction() as session:
            sync.settle_class(session=session, plan=plan, response=response, now=utcnow())

    def _patch_object(self, message: Message) -> str:
        with self.database.transaction() as session:
            plan = sync.plan_patch(
                session=session,
                object_row_id=message.content["object_row_id"],
                wallet=self.wallet,
                force=bool(message.content.get("force")),
                now=utcnow(),
            )
        if plan is None:
            return "object-up-to-date"
        self._attempt(plan, message, lambda: self._write_object(plan))
        return f"object:{plan.object_id}@v{plan.version}"

    def _write_object(self, plan: sync.ObjectPlan) -> bool:
        self._push_class(plan.class_plan)
        upsert_object(self.wallet.api, plan.payload, exists=plan.exists)
        return True

    def _add_message(self, message: Message) -> str:
        # Rows queued on this channel before the "wallet" channel existed carry their object and text.
        return self._send_message(message, message.content["object_row_id"], message.content["message"])

    def send_card_message(self, message: Message) -> str:
        """A "wallet" channel message: on the customer's card, as it is in Google Wallet now."""
        if message.customer_id is None:
            raise Undeliverable("a wallet message names no customer")
        with self.database.transaction() as session:
            object_row_id = wallet_object_of(session=session, customer_id=message.customer_id)
        if object_row_id is None:
            raise Undeliverable("the customer's card is not in Google Wallet")
        # The outbox id makes the message's id: a retry adds the same message, not a second one.
        text = {"id": f"pointcard-{message.id}", "header": message.content["header"], "body": message.content["body"]}
        return self._send_message(message, object_row_id, text)

    def _send_message(self, message: Message, object_row_id: int, text: dict) -> str:
        with self.database.transaction() as session:
            plan = sync.plan_message(
                session=session, object_row_id=object_row_id, message=text, wallet=self.wallet, now=utcnow()
            )
        if plan is None:
            raise Undeliverable("the card's Google Wallet object is gone")
        self._attempt(plan, message, lambda: self._write_message(plan))
        assert plan.message is not None  # plan_message set it
        return f"message:{plan.object_id}:{plan.message['messageType']}"

    def _write_message(self, plan: sync.ObjectPlan) -> bool:
        """Add the message, inserting the object first if Google has not got it. True if written."""
        assert plan.message is not None  # plan_message set it
        self._push_class(plan.class_plan)
        wrote = not plan.exists
        if wrote:
            upsert_object(self.wallet.api, plan.payload, exists=False)
        try:
            self.wallet.api.add_message(plan.object_id, plan.message)
        except NotInGoogle:
            upsert_object(self.wallet.api, plan.payload, exists=False)
            self.wallet.api.add_message(plan.object_id, plan.message)
            wrote = True
        return wrote

    def _attempt(self, plan: sync.ObjectPlan, message: Message, write: Callable[[], bool]) -> None:
        try:
            wrote = write()
        except BaseException:
            with self.database.transaction() as session:
                sync.release(session=session, plan=plan)
            raise
        with self.database.transaction() as session:
            sync.settle_object(session=session, plan=plan, wrote_object=wrote, message_id=message.id)


def build_sender(services: Services) -> GoogleWalletSender:
    return GoogleWalletSender(database=services.database, wallet=services.google_wallet)
