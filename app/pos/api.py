"""The cashier's till: scan, earn, redeem, refund. Thin: the rules live in app.loyalty."""

from __future__ import annotations

from flask import Blueprint

from app.api import current_principal, endpoint
from app.crud import get_or_404
from app.db import utcnow
from app.errors import Forbidden, NotFound
from app.extensions import get_session, get_settings
from app.loyalty.models import Customer, Store
from app.loyalty.service import available_rewards, card_by_barcode
from app.loyalty.tiers import next_tier, qualifying_points
from app.loyalty.transactions import VelocityLimits, record_purchase, redeem_reward, refund_purchase
from app.pos import schemas
from app.roles import Principal, Role

bp = Blueprint("pos", __name__, url_prefix="/api/v1/pos")
TILL = [Role.cashier, Role.admin]


def _store_id(principal: Principal, requested: int | None) -> int | None:
    """A cashier acts for their own store only; an admin may name any store."""
    if principal.role is Role.cashier:
        if requested is not None and requested != principal.store_id:
            raise Forbidden(f"This cashier works at store {principal.store_id}, not store {requested}.")
        return principal.store_id
    if requested is not None:
        get_or_404(get_session(), Store, requested)
    return requested


@bp.post("/scan")
@endpoint(roles=TILL, body=schemas.ScanRequest, response=schemas.ScanResult, tags=["pos"], errors=[404])
def scan(body: schemas.ScanRequest):
    """Read a wallet barcode: who the customer is, their balance and what they can redeem.

    Cashiers and admins. Changes nothing. The rewards are those available now, each marked
    `affordable` or not, and the answer says how many points the next tier needs. A barcode that is
    unknown, replaced or of a closed card is the same 404, so a guess tells the till nothing.
    """
    session = get_session()
    customer = card_by_barcode(session=session, barcode=body.barcode).customer
    program, now = customer.program, utcnow()
    upcoming = next_tier(program, customer.tier)
    earned = qualifying_points(session=session, customer=customer, program=program, now=now) if upcoming else 0
    return schemas.ScanResult(
        member_number=customer.card.member_number,
        first_name=customer.first_name,
        balance=customer.points_balance,
        tier=customer.tier.name if customer.tier else None,
        next_tier=upcoming.name if upcoming else None,
        points_to_next_tier=max(0, upcoming.threshold - earned) if upcoming else None,
        rewards=[
            schemas.RewardOption(
                id=r.id,
                name=r.name,
                kind=r.kind,
                points_cost=r.points_cost,
                affordable=r.points_cost <= customer.points_balance,
            )
            for r in available_rewards(session=session, program=program, now=now)
        ],
    )


@bp.post("/purchases")
@endpoint(
    roles=TILL,
    body=schemas.PurchaseRequest,
    response=schemas.PurchaseResult,
    status=201,
    idempotent=True,
    tags=["pos"],
    errors=[404, 429],
)
def create_purchase(body: schemas.PurchaseRequest):
    """Earn points on a purchase. Retrying with the same Idempotency-Key never earns twice.

    Cashiers and admins. A cashier's purchase is always at their own store (naming another is a 403);
    an admin may name any store of the card's program, or none. The points follow the program's rate,
    the customer's tier and the best promotion running; a currency other than the program's is a 422.
    Too many purchases on one card within the hour is a 429, and a purchase that would earn more than
    one transaction may is a 422: both guard against a till being misused.
    """
    principal, settings, session = current_principal(), get_settings(), get_session()
    store_id = _store_id(principal, body.store_id)
    card = card_by_barcode(session=session, barcode=body.barcode)
    store = session.get(Store, store_id) if store_id else None
    if store is not None and store.program_id != card.customer.program_id:
        raise NotFound(f"There is no store {store.id} in this card's program.")
    purchase, _ = record_purchase(
        session=session,
        customer_id=card.customer_id,
        amount=body.amount,
        currency=body.currency,
        store=store,
        cashier_id=principal.user_id,
        limits=VelocityLimits(settings.max_purchases_per_card_per_hour, settings.max_points_per_transaction),
    )
    customer = card.customer
    return schemas.PurchaseResult(
        transaction_id=purchase.id,
        points_earned=purchase.points_earned,
        balance=customer.points_balance,
        tier=customer.tier.name if customer.tier else None,
    )


@bp.post("/redemptions")
@endpoint(
    roles=TILL,
    body=schemas.RedemptionRequest,
    response=schemas.RedemptionResult,
    status=201,
    idempotent=True,
    tags=["pos"],
    errors=[404, 409],
)
def create_redemption(body: schemas.RedemptionRequest):
    """Spend points on a reward; 409 when the card has too few points or the reward is gone.

    Cashiers and admins. The reward must be active and within its dates (409 otherwise) and in stock;
    a tier upgrade the card already has is a 409 too; an unknown reward is a 404. The answer's `code`
    identifies the redemption, for the receipt. Send an Idempotency-Key: a retry with the same key
    returns the first redemption and spends nothing more.
    """
    principal, session = current_principal(), get_session()
    card = card_by_barcode(session=session, barcode=body.barcode)
    redemption = redeem_reward(
        session=session,
        customer_id=card.customer_id,
        reward_id=body.reward_id,
        store_id=_store_id(principal, None),
        cashier_id=principal.user_id,
    )
    return schemas.RedemptionResult(
        redemption_id=redemption.id,
        code=redemption.code,
        reward=redemption.reward.name,
        points_spent=redemption.points,
        balance=card.customer.points_balance,
    )


@bp.post("/purchases/<int:purchase_id>/refund")
@endpoint(
    roles=TILL,
    body=schemas.RefundRequest,
    response=schemas.RefundResult,
    status=201,
    idempotent=True,
    tags=["pos"],
    errors=[404, 409],
)
def refund(purchase_id: int, body: schemas.RefundRequest):
    """Refund a purchase, wholly or partly, and take back the points it earned.

    Cashiers and admins. Without `amount` the rest of the purchase is refunded. The points taken back
    are in proportion to the amount, so partial refunds add up to exactly what was earned, and may
    take the balance below zero when the points were already spent. More than what is left to refund
    is a 422, a purchase already fully refunded a 409. Send an Idempotency-Key: a retry refunds nothing
    more.
    """
    principal, session = current_principal(), get_session()
    purchase, points = refund_purchase(
        session=session,
        purchase_id=purchase_id,
        amount=body.amount,
        cashier_id=principal.user_id,
        store_id=_store_id(principal, None),
    )
    customer = session.get_one(Customer, purchase.customer_id)
    return schemas.RefundResult(
        transaction_id=purchase.id,
        refunded_amount=purchase.refunded_amount,
        points_reversed=points,
        balance=customer.points_balance,
    )
