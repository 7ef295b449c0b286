"""What the sender decides inside short transactions, before and after it calls Google.

No lock is held while Google is called. Two workers may patch the same object at once, so
each write remembers the version it read: if the object changed meanwhile, a forced patch is
queued after it, and the newest state is always the last one written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.wallet.google.models import GoogleWalletClass, GoogleWalletNotification, GoogleWalletObject
from app.wallet.google.payloads import payload_hash
from app.wallet.google.service import class_payload, mark_class_synced, object_payload, queue_patch
from app.wallet.google.wallet import GoogleWallet

log = logging.getLogger("pointcard.google_wallet")

NOTIFY_ON_UPDATE = "NOTIFY_ON_UPDATE"
WINDOW = timedelta(hours=24)


@dataclass
class ClassPlan:
    row_id: int
    payload: dict
    exists: bool


@dataclass
class ObjectPlan:
    row_id: int
    customer_id: int
    object_id: str
    version: int
    exists: bool
    payload: dict
    class_plan: ClassPlan | None
    message: dict | None = None
    notification_id: int | None = None
    claimed_notify_from: int | None = None  # notified_version before this send claimed it


def _lock_object(session: Session, row_id: int) -> GoogleWalletObject | None:
    return session.execute(
        select(GoogleWalletObject)
        .where(GoogleWalletObject.id == row_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def plan_class(*, session: Session, program_id: int, wallet: GoogleWallet, force: bool = False) -> ClassPlan | None:
    """The class to send, or None when Google already has this very design."""
    cls = session.scalar(select(GoogleWalletClass).where(GoogleWalletClass.program_id == program_id))
    if cls is None:
        return None
    payload = class_payload(session=session, program=cls.program, wallet=wallet)
    if not force and cls.inserted_in_google and cls.payload_hash == payload_hash(payload):
        return None
    return ClassPlan(row_id=cls.id, payload=payload, exists=cls.inserted_in_google)


def settle_class(*, session: Session, plan: ClassPlan, response: dict, now: datetime) -> None:
    mark_class_synced(
        cls=session.get_one(GoogleWalletClass, plan.row_id), payload=plan.payload, response=response, now=now
    )


def _object_plan(session: Session, obj: GoogleWalletObject, wallet: GoogleWallet, now: datetime) -> ObjectPlan:
    # The version is read before the card: a change committed in between makes the state sent
    # newer than its label, never older.
    version = obj.version
    card = obj.card
    cls = session.scalar(select(GoogleWalletClass).where(GoogleWalletClass.program_id == card.customer.program_id))
    class_plan = (
        None
        if cls is None or cls.inserted_in_google
        else plan_class(session=session, program_id=cls.program_id, wallet=wallet, force=True)
    )
    return ObjectPlan(
        row_id=obj.id,
        customer_id=card.customer_id,
        object_id=obj.object_id,
        version=version,
        exists=obj.inserted_in_google,
        class_plan=class_plan,
        payload=object_payload(session=session, card=card, wallet=wallet, now=now),
    )


def _reserve_notification(
    session: Session, obj: GoogleWalletObject, *, kind: str, cap: int, now: datetime
) -> int | None:
    """A slot under Google's cap (the object row is locked), or None: then send silently."""
    recent = session.execute(
        select(func.count(GoogleWalletNotification.id)).where(
            GoogleWalletNotification.object_row_id == obj.id, GoogleWalletNotification.sent_at > now - WINDOW
        )
    ).scalar_one()
    if recent >= cap:
        log.info("object %s had %s notifications in 24 h: this %s goes out silently", obj.object_id, recent, kind)
        return None
    slot = GoogleWalletNotification(object_row_id=obj.id, kind=kind, sent_at=now)
    session.add(slot)
    session.flush()
    return slot.id


def plan_patch(
    *, session: Session, object_row_id: int, wallet: GoogleWallet, force: bool, now: datetime
) -> ObjectPlan | None:
    """The object to write, or None when Google already holds its current version."""
    obj = _lock_object(session, object_row_id)
    if obj is None or (not force and obj.synced_version == obj.version):
        return None
    plan = _object_plan(session, obj, wallet, now)
    if obj.notify_version > obj.notified_version:
        plan.claimed_notify_from, obj.notified_version = obj.notified_version, plan.version
        plan.notification_id = _reserve_notification(
            session, obj, kind="update", cap=wallet.settings.notifications_per_day, now=now
        )
        if plan.notification_id is not None:
            plan.payload["notifyPreference"] = NOTIFY_ON_UPDATE
    return plan


def plan_message(
    *, session: Session, object_row_id: int, message: dict, wallet: GoogleWallet, now: datetime
) -> ObjectPlan | None:
    obj = _lock_object(session, object_row_id)
    if obj is None:
        return None
    plan = _object_plan(session, obj, wallet, now)
    plan.notification_id = _reserve_notification(
        session, obj, kind="message", cap=wallet.settings.notifications_per_day, now=now
    )
    plan.message = {**message, "messageType": "TEXT_AND_NOTIFY" if plan.notification_id else "TEXT"}
    return plan


def release(*, session: Session, plan: ObjectPlan) -> None:
    """The send failed: give back its notification slot and its claim on the notifying change."""
    if plan.notification_id is not None:
        session.execute(delete(GoogleWalletNotification).where(GoogleWalletNotification.id == plan.notification_id))
    obj = _lock_object(session, plan.row_id)
    if obj is not None and plan.claimed_notify_from is not None and obj.notified_version == plan.version:
        obj.notified_version = plan.claimed_notify_from


def settle_object(*, session: Session, plan: ObjectPlan, wrote_object: bool, message_id: int) -> None:
    obj = _lock_object(session, plan.row_id)
    if obj is None:
        return
    obj.inserted_in_google = True
    if not wrote_object:
        return
    if obj.version == plan.version:
        obj.synced_version = plan.version
    else:
        # Changed while we sent: a patch that read the newer state may already have landed
        # before ours, so send again, now.
        queue_patch(
            session=session,
            customer_id=plan.customer_id,
            object_row_id=obj.id,
            version=obj.version,
            force=True,
            suffix=f":after-{message_id}",
        )
