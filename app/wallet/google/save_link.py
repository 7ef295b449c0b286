"""The "Add to Google Wallet" link: a JWT signed with the service account's key (RS256).

The link carries the object (and the class until Google has it) when that fits in
`max_jwt_chars`. Otherwise what is missing is put into Google through the REST API first,
outside any transaction, and the link carries only the object's id; once the object is in
Google, it always does.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import jwt
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Problem
from app.loyalty.models import Card
from app.messaging.outbox import enqueue
from app.wallet.google import service
from app.wallet.google.credentials import ServiceAccount
from app.wallet.google.models import GoogleWalletClass, GoogleWalletObject
from app.wallet.google.payloads import payload_hash
from app.wallet.google.providers import GoogleRefused, GoogleUnavailable, upsert_class, upsert_object
from app.wallet.google.wallet import GoogleWallet

log = logging.getLogger("pointcard.google_wallet")


class GoogleWalletUnavailable(Problem):
    status, slug, title = 503, "google-wallet-unavailable", "Google Wallet unavailable"


class GoogleWalletRefused(Problem):
    status, slug, title = 502, "google-wallet-refused", "Google Wallet refused the card"


def fat_payload(object_payload: dict, class_payload: dict | None = None) -> dict:
    """Google creates what the link carries when the customer saves it."""
    payload = {"loyaltyObjects": [object_payload]}
    if class_payload is not None:
        payload["loyaltyClasses"] = [class_payload]
    return payload


def skinny_payload(*, object_id: str, class_id: str) -> dict:
    """Only a reference: the object must already exist in Google."""
    return {"loyaltyObjects": [{"id": object_id, "classId": class_id}]}


def sign(*, account: ServiceAccount, origins: list[str], payload: dict, now: datetime) -> str:
    claims = {
        "iss": account.email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(now.timestamp()),
        "origins": origins,
        "payload": payload,
    }
    headers = {"kid": account.key_id} if account.key_id else None
    return jwt.encode(claims, account.private_key, algorithm="RS256", headers=headers)


@dataclass
class SaveLink:
    """A save link, and what must be put into Google through the REST API before it works."""

    url: str
    class_row_id: int
    object_row_id: int
    version: int
    class_payload: dict | None = None
    object_payload: dict | None = None

    @property
    def needs_push(self) -> bool:
        return self.class_payload is not None or self.object_payload is not None


def plan_save_link(*, session: Session, card: Card, wallet: GoogleWallet, now: datetime | None = None) -> SaveLink:
    """The card's link, and what `push_save_link` must put into Google before it is followed."""
    now = now or utcnow()
    program = card.customer.program
    cls = service.class_row(session=session, program=program, wallet=wallet)
    obj = service.object_row(session=session, card=card, wallet=wallet)
    design = service.class_payload(session=session, program=program, wallet=wallet)
    link = SaveLink(url="", class_row_id=cls.id, object_row_id=obj.id, version=obj.version)
    token = _save_jwt(session=session, card=card, cls=cls, obj=obj, design=design, wallet=wallet, now=now, link=link)
    if link.class_payload is None:
        queue_class_sync_if_changed(session=session, cls=cls, payload=design)
    link.url = wallet.settings.save_url_base + token
    return link


def _sign(wallet: GoogleWallet, payload: dict, now: datetime) -> str:
    return sign(account=wallet.account, origins=wallet.origins, payload=payload, now=now)


def _save_jwt(
    *,
    session: Session,
    card: Card,
    cls: GoogleWalletClass,
    obj: GoogleWalletObject,
    design: dict,
    wallet: GoogleWallet,
    now: datetime,
    link: SaveLink,
) -> str:
    skinny = skinny_payload(object_id=obj.object_id, class_id=cls.class_id)
    if obj.inserted_in_google:
        return _sign(wallet, skinny, now)
    limit = wallet.settings.max_jwt_chars
    card_object = service.object_payload(session=session, card=card, wallet=wallet, now=now)
    if not cls.inserted_in_google:
        token = _sign(wallet, fat_payload(card_object, design), now)
        if len(token) <= limit:
            return token
        link.class_payload = design
    token = _sign(wallet, fat_payload(card_object), now)
    if len(token) <= limit:
        return token
    link.object_payload = card_object
    return _sign(wallet, skinny, now)


def push_save_link(*, link: SaveLink, wallet: GoogleWallet) -> dict:
    """Put the link's class and object into Google (network only: call it with no transaction open)."""
    response = {}
    try:
        if link.class_payload is not None:
            response = upsert_class(wallet.api, link.class_payload, exists=False)
        if link.object_payload is not None:
            upsert_object(wallet.api, link.object_payload, exists=False)
    except GoogleUnavailable as exc:
        log.warning("Google Wallet did not answer a save link's REST call: %s", exc)
        raise GoogleWalletUnavailable("Google Wallet did not answer; try again in a minute.") from exc
    except GoogleRefused as exc:
        log.error("Google Wallet refused a save link's REST call: %s", exc)
        raise GoogleWalletRefused("Google Wallet refused this card; the error is logged.") from exc
    return response


def record_save_link_push(
    *, session: Session, link: SaveLink, class_response: dict, now: datetime | None = None
) -> None:
    if link.class_payload is not None:
        service.mark_class_synced(
            cls=session.get_one(GoogleWalletClass, link.class_row_id),
            payload=link.class_payload,
            response=class_response,
            now=now or utcnow(),
        )
    if link.object_payload is not None:
        obj = session.get_one(GoogleWalletObject, link.object_row_id, with_for_update=True)
        obj.inserted_in_google = True
        if obj.version == link.version:
            obj.synced_version = link.version
        else:  # changed while we pushed: our older state may have landed last
            service.queue_patch(
                session=session,
                customer_id=obj.card.customer_id,
                object_row_id=obj.id,
                version=obj.version,
                force=True,
                suffix=f":after-link-{uuid.uuid4().hex[:12]}",
            )
    session.flush()


def queue_class_sync_if_changed(*, session: Session, cls: GoogleWalletClass, payload: dict) -> None:
    """A new class, or a changed design or store list, goes to Google through the outbox."""
    new = payload_hash(payload)
    if cls.payload_hash == new:
        return
    old = (cls.payload_hash or "none")[:12]
    enqueue(
        session=session,
        customer_id=None,
        channel=service.CHANNEL,
        template="google_wallet.sync_class",
        content={"op": "sync_class", "program_id": cls.program_id},
        dedupe_key=f"google_wallet:class:{cls.id}:{old}->{new[:12]}",
    )
