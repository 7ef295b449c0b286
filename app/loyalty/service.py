"""Programs, customers, cards and consents: enrolment and the reads the till needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from app.crud import apply_changes
from app.db import utcnow
from app.encryption import blind_index
from app.errors import Conflict, NotFound, Unauthorized, Unprocessable
from app.loyalty import codes, events
from app.loyalty.ledger import credit, expiry_for
from app.loyalty.models import (
    Card,
    CardStatus,
    Channel,
    Consent,
    Customer,
    EntryKind,
    Program,
    Referral,
    Reward,
)
from app.loyalty.tiers import evaluate_tier
from app.roles import Principal


class CardNotFound(NotFound):
    slug, title = "card-not-found", "Card not found"


def get_program(*, session: Session, program_id: int | None = None) -> Program:
    """The given program, or the deployment's only (first) one."""
    query = select(Program).order_by(Program.id).limit(1)
    if program_id is not None:
        query = select(Program).where(Program.id == program_id)
    program = session.scalar(query)
    if program is None:
        raise NotFound("No loyalty program is set up yet; run 'flask demo seed' or create one.")
    return program


def update_program(*, session: Session, program: Program, changes: BaseModel) -> Program:
    """Change the earning rules; points already earned keep their expiry."""
    apply_changes(program, changes)
    session.flush()
    return program


def _unique(session: Session, make: Callable[[], str], column) -> str:
    for _ in range(10):
        value = make()
        if not session.scalar(select(exists().where(column == value))):
            return value
    raise RuntimeError(f"could not draw a free {column}")


def _check_not_enrolled(*, session: Session, program: Program, email: str | None, phone: str | None) -> None:
    for field, value, column in (("email", email, Customer.email_index), ("phone", phone, Customer.phone_index)):
        if value and session.scalar(
            select(
                exists().where(
                    Customer.program_id == program.id, column == blind_index(value, column=f"customers.{field}")
                )
            )
        ):
            raise Conflict(f"A customer with this {field} is already enrolled.", field=field)


def _referrer(*, session: Session, program: Program, referral_code: str | None) -> Customer | None:
    if not referral_code:
        return None
    referrer = session.scalar(
        select(Customer).where(Customer.program_id == program.id, Customer.referral_code == referral_code.upper())
    )
    if referrer is None:
        raise Unprocessable("The referral code is not known.", field="referral_code")
    return referrer


def record_consents(
    *,
    session: Session,
    customer: Customer,
    consents: Mapping[Channel, bool],
    source: str,
    disclosure: str,
    ip_address: str | None,
    at: datetime | None = None,
) -> None:
    for channel, granted in consents.items():
        session.add(
            Consent(
                customer_id=customer.id,
                channel=channel,
                granted=granted,
                source=source,
                disclosure=disclosure,
                ip_address=ip_address,
                recorded_at=at or utcnow(),
            )
        )


def current_consents(*, session: Session, customer_id: int) -> dict[Channel, Consent]:
    latest = select(func.max(Consent.id)).where(Consent.customer_id == customer_id).group_by(Consent.channel)
    rows = session.scalars(select(Consent).where(Consent.id.in_(latest))).all()
    return {row.channel: row for row in rows}


def enroll_customer(
    *,
    session: Session,
    program: Program,
    first_name: str,
    last_name: str = "",
    email: str | None = None,
    phone: str | None = None,
    timezone: str | None = None,
    consents: Mapping[Channel, bool] | None = None,
    consent_source: str = "enrolment",
    disclosure: str = "",
    ip_address: str | None = None,
    referral_code: str | None = None,
    now: datetime | None = None,
) -> Customer:
    now = now or utcnow()
    email = email.lower() if email else None
    _check_not_enrolled(session=session, program=program, email=email, phone=phone)
    referrer = _referrer(session=session, program=program, referral_code=referral_code)
    customer = Customer(
        program_id=program.id,
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        timezone=timezone,
        referred_by_id=referrer.id if referrer else None,
        created_at=now,
        referral_code=_unique(session, lambda: codes.readable_code(8), Customer.referral_code),
    )
    session.add(customer)
    session.flush()
    session.add(
        Card(
            customer_id=customer.id,
            member_number=_unique(session, codes.member_number, Card.member_number),
            barcode_token=codes.barcode_token(),
            access_token=codes.access_token(),
            created_at=now,
            updated_at=now,
        )
    )
    record_consents(
        session=session,
        customer=customer,
        consents=consents or {},
        source=consent_source,
        disclosure=disclosure,
        ip_address=ip_address,
        at=now,
    )
    if referrer is not None:
        session.add(Referral(referrer_id=referrer.id, referee_id=customer.id, created_at=now))
    session.flush()
    events.customer_enrolled.send(customer)
    evaluate_tier(session=session, customer=customer, now=now)
    if program.signup_bonus:
        credit(
            session=session,
            customer=customer,
            kind=EntryKind.bonus,
            points=program.signup_bonus,
            expires_at=expiry_for(earned_at=now, expiry_months=program.expiry_months),
            at=now,
            reason="signup bonus",
        )
    return customer


def card_by_barcode(*, session: Session, barcode: str) -> Card:
    card = session.scalar(select(Card).where(Card.barcode_token == barcode.strip()))
    if card is None or card.status is not CardStatus.active:
        # Same answer for forged, rotated and closed: the till learns nothing from a guess.
        raise CardNotFound("No active card has this barcode.")
    return card


def check_card_active(session: Session, principal: Principal) -> None:
    """A customer's token stops working the moment their card is closed."""
    card = session.scalar(select(Card).where(Card.customer_id == principal.customer_id))
    if card is None or card.status is not CardStatus.active:
        raise Unauthorized("This card is closed; its tokens no longer work.")


def card_by_access_token(*, session: Session, access_token: str) -> Card:
    card = session.scalar(select(Card).where(Card.access_token == access_token))
    if card is None or card.status is not CardStatus.active:
        raise CardNotFound("No active card has this link; it may have been replaced.")
    return card


def rotate_barcode(*, session: Session, card: Card) -> Card:
    """Issue a new barcode (lost or shared card): the old one stops scanning at once."""
    card.barcode_token = codes.barcode_token()
    card.updated_at = utcnow()
    session.flush()
    events.card_changed.send(card.customer, card=card)
    return card


def close_card(*, session: Session, card: Card) -> Card:
    """Close the card for good: the till and the card page refuse it, and the wallets void the pass."""
    card.status = CardStatus.closed
    card.updated_at = utcnow()
    session.flush()
    events.card_changed.send(card.customer, card=card)
    return card


def available_rewards(*, session: Session, program: Program, now: datetime) -> list[Reward]:
    return list(
        session.scalars(
            select(Reward)
            .where(
                Reward.program_id == program.id,
                Reward.active.is_(True),
                (Reward.stock.is_(None)) | (Reward.stock > 0),
                (Reward.active_from.is_(None)) | (Reward.active_from <= now),
                (Reward.active_until.is_(None)) | (Reward.active_until > now),
            )
            .order_by(Reward.points_cost, Reward.id)
        )
    )
