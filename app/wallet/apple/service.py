"""Apple passes: issue, describe, build; device registrations; what changed since a tag.

Keyword-only functions taking a session: they flush, never commit.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import NotFound, Problem, Unauthorized
from app.loyalty.models import BarcodeFormat, Card, CardStatus, Customer
from app.loyalty.service import available_rewards
from app.messaging.outbox import enqueue
from app.wallet.apple.config import AppleWalletSettings
from app.wallet.apple.designs import PassDesign, design_for
from app.wallet.apple.models import AppleDeviceRegistration, ApplePass
from app.wallet.apple.package import build_pkpass
from app.wallet.apple.signing import CredentialsMissing, load_credentials
from app.wallet.locations import nearby_places

CHANNEL = "apple_wallet"
_BARCODE_FORMATS = {
    BarcodeFormat.qr: "PKBarcodeFormatQR",
    BarcodeFormat.pdf417: "PKBarcodeFormatPDF417",
    BarcodeFormat.aztec: "PKBarcodeFormatAztec",
    BarcodeFormat.code128: "PKBarcodeFormatCode128",
}


class PassNotFound(NotFound):
    slug, title = "pass-not-found", "Pass not found"


class PassAuthenticationFailed(Unauthorized):
    slug, title = "pass-authentication-failed", "Not authorized for this pass"


class PassesUnavailable(Problem):
    status, slug, title = 503, "apple-wallet-unavailable", "Apple Wallet passes are unavailable"


# --- issuing and authenticating ----------------------------------------------------------------


def _tag(now: datetime) -> int:
    return int(now.timestamp() * 1_000_000)


def issue_pass(*, session: Session, card: Card) -> ApplePass:
    """The card's pass, created on its first download (two racing downloads get the same one)."""
    existing = session.scalar(select(ApplePass).where(ApplePass.card_id == card.id))
    if existing is not None:
        return existing
    now = utcnow()
    apple_pass = ApplePass(
        card_id=card.id,
        serial_number=secrets.token_hex(16),
        authentication_token=secrets.token_urlsafe(32),
        update_tag=_tag(now),
        updated_at=now,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(apple_pass)
    except IntegrityError:  # a racing first download made it
        return session.scalars(select(ApplePass).where(ApplePass.card_id == card.id)).one()
    return apple_pass


def authenticated_pass(
    *, session: Session, settings: AppleWalletSettings, pass_type_id: str, serial_number: str, authorization: str | None
) -> ApplePass:
    """The pass named by a device, if the request carries its `ApplePass <token>` header."""
    if pass_type_id != settings.pass_type_id:
        raise PassNotFound(f"This service issues no passes of type {pass_type_id}.")
    apple_pass = session.scalar(select(ApplePass).where(ApplePass.serial_number == serial_number))
    scheme, _, token = (authorization or "").partition(" ")
    expected = apple_pass.authentication_token if apple_pass else secrets.token_urlsafe(32)
    # Constant time, and the same work for an unknown serial: the answer leaks nothing.
    matches = hmac.compare_digest(token.strip().encode(), expected.encode())
    if apple_pass is None or scheme != "ApplePass" or not matches:
        raise PassAuthenticationFailed("The request needs 'Authorization: ApplePass <token>' of this pass.")
    return apple_pass


# --- device registrations ----------------------------------------------------------------------


def register_device(*, session: Session, apple_pass: ApplePass, device_library_id: str, push_token: str) -> bool:
    """Record that the device wants updates of the pass; True when it is new (Apple's 201)."""
    registration = session.scalar(
        select(AppleDeviceRegistration).where(
            AppleDeviceRegistration.pass_id == apple_pass.id,
            AppleDeviceRegistration.device_library_id == device_library_id,
        )
    )
    if registration is not None:
        if registration.push_token != push_token:
            registration.push_token, registration.updated_at = push_token, utcnow()
        return False
    try:
        with session.begin_nested():
            session.add(
                AppleDeviceRegistration(
                    pass_id=apple_pass.id,
                    device_library_id=device_library_id,
                    push_token=push_token,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
    except IntegrityError:
        return False  # the device's retry raced its first attempt
    return True


def unregister_device(*, session: Session, apple_pass: ApplePass, device_library_id: str) -> None:
    registration = session.scalar(
        select(AppleDeviceRegistration).where(
            AppleDeviceRegistration.pass_id == apple_pass.id,
            AppleDeviceRegistration.device_library_id == device_library_id,
        )
    )
    if registration is not None:
        session.delete(registration)
        session.flush()


def forget_push_token(
    *, session: Session, registration_id: int, push_token: str, invalid_since: datetime | None
) -> bool:
    """APNs says the token is dead: drop the registration unless the device re-registered after."""
    registration = session.get(AppleDeviceRegistration, registration_id)
    if registration is None or registration.push_token != push_token:
        return False
    if invalid_since is not None and registration.updated_at > invalid_since:
        return False
    session.delete(registration)
    session.flush()
    return True


@dataclass(frozen=True)
class UpdatedSerials:
    serial_numbers: list[str]
    last_updated: str


def updated_serials(
    *, session: Session, settings: AppleWalletSettings, device_library_id: str, pass_type_id: str, since: str | None
) -> UpdatedSerials | None:
    """The device's passes changed after the tag it last saw; None when there are none (204)."""
    if pass_type_id != settings.pass_type_id:
        return None
    query = (
        select(ApplePass.serial_number, ApplePass.update_tag)
        .join(AppleDeviceRegistration, AppleDeviceRegistration.pass_id == ApplePass.id)
        .where(AppleDeviceRegistration.device_library_id == device_library_id)
    )
    if since is not None and since.strip().isdigit():  # a tag we never gave out means "everything"
        query = query.where(ApplePass.update_tag > int(since))
    rows = session.execute(query.order_by(ApplePass.update_tag)).all()
    if not rows:
        return None
    return UpdatedSerials(serial_numbers=[row.serial_number for row in rows], last_updated=str(rows[-1].update_tag))


# --- changes and pushes ------------------------------------------------------------------------


def _bump(apple_pass: ApplePass, now: datetime) -> None:
    apple_pass.update_tag = max(_tag(now), apple_pass.update_tag + 1)
    # A later whole second than before, so If-Modified-Since can never hide this version.
    next_second = apple_pass.updated_at.replace(microsecond=0) + timedelta(seconds=1)
    apple_pass.updated_at = max(now, next_second)


def passes_changed(*, session: Session, customer_ids: Iterable[int]) -> int:
    """Mark the customers' passes changed and queue one push per registered device.

    Returns how many pushes were queued. The dedupe key holds the new tag, so a retried
    transaction queues nothing twice and every later change gets its own push.
    """
    passes = session.scalars(
        select(ApplePass)
        .join(Card, Card.id == ApplePass.card_id)
        .where(Card.customer_id.in_(list(customer_ids)))
        .order_by(ApplePass.id)
        .with_for_update(of=ApplePass)
    ).all()
    queued, now = 0, utcnow()
    for apple_pass in passes:
        _bump(apple_pass, now)
        registrations = session.scalars(
            select(AppleDeviceRegistration)
            .where(AppleDeviceRegistration.pass_id == apple_pass.id)
            .order_by(AppleDeviceRegistration.id)
        ).all()
        for registration in registrations:
            enqueue(
                session=session,
                customer_id=apple_pass.card.customer_id,
                channel=CHANNEL,
                template="apple_pass_update",
                content={
                    "registration_id": registration.id,
                    "push_token": registration.push_token,
                    "serial_number": apple_pass.serial_number,
                },
                dedupe_key=f"apple-pass:{registration.id}:{apple_pass.update_tag}",
            )
            queued += 1
    session.flush()
    return queued


# --- what the pass says ------------------------------------------------------------------------


def last_modified(apple_pass: ApplePass) -> datetime:
    """Whole seconds, as HTTP carries it; a new barcode (card.updated_at) counts as a change."""
    return max(apple_pass.updated_at, apple_pass.card.updated_at).replace(microsecond=0)


def _next_reward(rewards: list, balance: int) -> dict[str, Any] | None:
    upcoming = [reward for reward in rewards if reward.points_cost > balance]
    if not upcoming:
        return None
    reward = upcoming[0]
    return {"name": reward.name, "points": reward.points_cost, "points_to_go": reward.points_cost - balance}


def design_context(*, session: Session, customer: Customer, now: datetime) -> dict[str, Any]:
    """The values a pass.json template may use (documented in wallet_templates/README.md)."""
    program = customer.program
    rewards = available_rewards(session=session, program=program, now=now)
    balance = customer.points_balance
    return {
        "member": {
            "name": customer.display_name,
            "first_name": customer.first_name,
            "number": customer.card.member_number,
        },
        "program": {"name": program.name, "slug": program.slug},
        "balance": balance,
        "tier": customer.tier.name if customer.tier else "",
        "next_reward": _next_reward(rewards, balance),
        "rewards_ready": sum(1 for reward in rewards if reward.points_cost <= balance),
        "closed": customer.card.status is CardStatus.closed,
    }


def _locations(*, session: Session, customer: Customer) -> list[dict[str, Any]]:
    return [
        {
            "latitude": store.latitude,
            "longitude": store.longitude,
            "relevantText": offer_text or f"{store.name} is nearby",
        }
        for store, offer_text in nearby_places(session=session, customer=customer)
    ]


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def pass_document(
    *,
    session: Session,
    apple_pass: ApplePass,
    design: PassDesign,
    settings: AppleWalletSettings,
    web_service_url: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The whole pass.json: the program's design around the card's identity and barcode."""
    card = apple_pass.card
    customer = card.customer
    document = design.render(design_context(session=session, customer=customer, now=now or utcnow()))
    document.setdefault("organizationName", settings.organization_name)
    document.setdefault("description", f"{customer.program.name} loyalty card")
    document.update(
        {
            "formatVersion": 1,
            "passTypeIdentifier": settings.pass_type_id,
            "teamIdentifier": settings.team_id,
            "serialNumber": apple_pass.serial_number,
            "authenticationToken": apple_pass.authentication_token,
            "webServiceURL": web_service_url,
            "barcodes": [
                {
                    "format": _BARCODE_FORMATS[customer.program.barcode_format],
                    "message": card.barcode_token,
                    "messageEncoding": "iso-8859-1",
                    "altText": card.member_number,
                }
            ],
            "locations": _locations(session=session, customer=customer),
        }
    )
    if card.status is CardStatus.closed:
        document.update(voided=True, expirationDate=_iso(card.updated_at))
    return document


def build_pass(
    *, session: Session, apple_pass: ApplePass, settings: AppleWalletSettings, web_service_url: str
) -> bytes:
    """The signed .pkpass of the pass as it stands now."""
    try:
        credentials = load_credentials(settings)
    except CredentialsMissing as exc:
        raise PassesUnavailable("Apple Wallet passes are not set up on this server yet.") from exc
    design = design_for(settings.templates_dir, apple_pass.card.customer.program.slug)
    document = pass_document(
        session=session, apple_pass=apple_pass, design=design, settings=settings, web_service_url=web_service_url
    )
    return build_pkpass(
        pass_json=document, files=design.files, credentials=credentials, modified=last_modified(apple_pass)
    )
