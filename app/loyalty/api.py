from __future__ import annotations

from flask import Blueprint, request
from sqlalchemy import select

from app.api import current_customer_id, current_user_id, endpoint
from app.crud import get_or_404
from app.encryption import blind_index
from app.extensions import get_session, get_settings, limiter
from app.loyalty import catalog, schemas, service
from app.loyalty.ledger import lock_customer
from app.loyalty.models import Card, Channel, Customer, LedgerEntry, Promotion, Reward, Tier
from app.loyalty.transactions import adjust_points
from app.roles import ADMIN, ALL_STAFF, CUSTOMER, STAFF_WRITERS, Principal, Role
from app.tokens import TokenResponse, token_response

bp = Blueprint("loyalty", __name__, url_prefix="/api/v1")


def card_links(card: Card) -> dict[str, str]:
    base = get_settings().public_base_url.rstrip("/")
    return {
        "card_url": f"{base}/card/{card.access_token}",
        "apple_pass_url": f"{base}/wallet/apple/{card.access_token}.pkpass",
        "google_save_url": f"{base}/wallet/google/{card.access_token}",
    }


def _program():
    return service.get_program(session=get_session())


@bp.post("/auth/card")
@limiter.limit(lambda: get_settings().login_rate_limit)
@endpoint(roles=None, body=schemas.CardTokenRequest, response=TokenResponse, tags=["auth"], errors=[404, 429])
def create_card_token(body: schemas.CardTokenRequest):
    """Exchange the card page's secret for a customer token scoped to that customer.

    Public: `card_token` is the secret at the end of the card page's URL, and whoever holds it holds
    the card. The token it returns works for the /me endpoints of that one customer and stops working
    when the card is closed. An unknown or replaced card is a 404; rate-limited per IP address like
    the staff login.
    """
    card = service.card_by_access_token(session=get_session(), access_token=body.card_token)
    settings = get_settings()
    principal = Principal(role=Role.customer, customer_id=card.customer_id)
    return token_response(principal, settings=settings, minutes=settings.customer_token_minutes)


# --- enrolment and customers ---------------------------------------------------------------


@bp.post("/enroll")
@limiter.limit(lambda: get_settings().enroll_rate_limit)
@endpoint(
    roles=None,
    body=schemas.EnrollRequest,
    response=schemas.EnrollResponse,
    status=201,
    tags=["customers"],
    errors=[409, 429],
)
def enroll(body: schemas.EnrollRequest):
    """Enrol a customer and issue their card (public; rate-limited per IP).

    Give `first_name` (and `last_name`) or a full `name`; an e-mail and a phone number (in
    international format) are optional. One already enrolled is a 409 naming the `field`, and an
    unknown `referral_code` is a 422. A consent only counts with the disclosure the customer agreed
    to, so any channel set to true needs `consent_text`. The answer holds the card page's URL, which
    is the card's secret, and the links that add the card to Apple or Google Wallet.
    """
    customer = service.enroll_customer(
        session=get_session(),
        program=_program(),
        first_name=body.names[0],
        last_name=body.names[1],
        email=body.email,
        phone=body.phone,
        timezone=body.timezone,
        consents=body.consents.by_channel(),
        consent_source="enrolment",
        disclosure=body.consent_text,
        ip_address=request.remote_addr,
        referral_code=body.referral_code,
    )
    card = customer.card
    return schemas.EnrollResponse(
        customer_id=customer.id,
        member_number=card.member_number,
        barcode=card.barcode_token,
        balance=customer.points_balance,
        referral_code=customer.referral_code,
        **card_links(card),
    )


def customer_read(customer: Customer) -> schemas.CustomerRead:
    return schemas.CustomerRead(
        id=customer.id,
        first_name=customer.first_name,
        last_name=customer.last_name,
        email=customer.email,
        phone=customer.phone,
        timezone=customer.timezone,
        member_number=customer.card.member_number,
        balance=customer.points_balance,
        tier=customer.tier.name if customer.tier else None,
        referral_code=customer.referral_code,
        created_at=customer.created_at,
    )


@bp.get("/customers")
@endpoint(roles=STAFF_WRITERS, query=schemas.CustomerQuery, response=list[schemas.CustomerRead], tags=["customers"])
def list_customers(query: schemas.CustomerQuery):
    """Find customers by e-mail, phone or member number, or page through them.

    Admins and marketers. E-mail and phone are stored encrypted, so they match exactly (case and
    spacing aside, a phone in international format), never in part. Customers who asked to be erased
    are left out unless `include_erased` is true; their names and contacts are then blank. In id order.
    """
    statement = select(Customer).join(Card).order_by(Customer.id).limit(query.limit).offset(query.offset)
    if not query.include_erased:
        statement = statement.where(Customer.erased_at.is_(None))
    if query.email:
        statement = statement.where(Customer.email_index == blind_index(query.email, column="customers.email"))
    if query.phone:
        statement = statement.where(Customer.phone_index == blind_index(query.phone, column="customers.phone"))
    if query.member_number:
        statement = statement.where(Card.member_number == query.member_number)
    return [customer_read(c) for c in get_session().scalars(statement)]


@bp.get("/customers/<int:customer_id>")
@endpoint(roles=STAFF_WRITERS, response=schemas.CustomerRead, tags=["customers"], errors=[404])
def get_customer(customer_id: int):
    """One customer with balance and tier (admins and marketers).

    404 when there is no such customer. The balance moves with every ledger entry, so it is exact
    now; the tier is the one last worked out, at a purchase, refund or redemption, or by the nightly
    check that demotes customers whose points left the tier window.
    """
    return customer_read(get_or_404(get_session(), Customer, customer_id))


@bp.get("/customers/<int:customer_id>/ledger")
@endpoint(
    roles=STAFF_WRITERS, query=schemas.Page, response=list[schemas.LedgerEntryRead], tags=["customers"], errors=[404]
)
def customer_ledger(customer_id: int, query: schemas.Page):
    """The customer's ledger, newest first (admins and marketers).

    Every change of the balance is one entry (`earn`, `redeem`, `refund`, `expire`, `adjust`,
    `bonus`) with the balance after it, its reason and, for points added, when they expire. Paged
    with `limit` and `offset`; 404 when there is no such customer.
    """
    get_or_404(get_session(), Customer, customer_id)
    return _ledger(customer_id, query)


def _ledger(customer_id: int, page: schemas.Page) -> list[LedgerEntry]:
    return list(
        get_session().scalars(
            select(LedgerEntry)
            .where(LedgerEntry.customer_id == customer_id)
            .order_by(LedgerEntry.id.desc())
            .limit(page.limit)
            .offset(page.offset)
        )
    )


@bp.post("/customers/<int:customer_id>/adjustments")
@endpoint(
    roles=ADMIN,
    body=schemas.AdjustmentCreate,
    response=schemas.LedgerEntryRead,
    status=201,
    idempotent=True,
    tags=["customers"],
    errors=[404],
)
def create_adjustment(customer_id: int, body: schemas.AdjustmentCreate):
    """Correct a balance by hand (admin): recorded in the ledger with the reason.

    Positive `points` add (they expire like earned points), negative ones remove and may take the
    balance below zero, since a correction must be able to undo a mistake already spent. Send an
    Idempotency-Key: a retry with the same key returns the first entry and adds nothing.
    """
    get_or_404(get_session(), Customer, customer_id)
    return adjust_points(
        session=get_session(),
        customer_id=customer_id,
        points=body.points,
        reason=body.reason,
        staff_user_id=current_user_id(),
    )


@bp.post("/customers/<int:customer_id>/card/rotate")
@endpoint(roles=ADMIN, response=schemas.CardRead, tags=["customers"], errors=[404])
def rotate_card(customer_id: int):
    """Issue a new barcode for a lost or shared card; the old one stops scanning.

    Admins only. The points, the member number and the card page's URL stay; the wallet passes are
    updated with the new barcode. The answer has the new barcode for the till.
    """
    customer = lock_customer(session=get_session(), customer_id=get_or_404(get_session(), Customer, customer_id).id)
    card = service.rotate_barcode(session=get_session(), card=customer.card)
    return schemas.CardRead(
        member_number=card.member_number, barcode=card.barcode_token, card_url=card_links(card)["card_url"]
    )


@bp.get("/me")
@endpoint(roles=CUSTOMER, response=schemas.CustomerRead, tags=["me"])
def get_me():
    """The calling customer's own card: balance, tier, referral code.

    For a customer token (from POST /auth/card); staff tokens are a 403. The same fields staff see
    for the customer, contact details included, and nobody else's.
    """
    return customer_read(get_or_404(get_session(), Customer, current_customer_id()))


@bp.get("/me/ledger")
@endpoint(roles=CUSTOMER, query=schemas.Page, response=list[schemas.LedgerEntryRead], tags=["me"])
def get_my_ledger(query: schemas.Page):
    """The calling customer's points history, newest first.

    For a customer token. The same entries staff see in the customer's ledger, paged with `limit` and
    `offset`.
    """
    return _ledger(current_customer_id(), query)


@bp.put("/me/consents")
@endpoint(roles=CUSTOMER, body=schemas.ConsentsUpdate, response=schemas.ConsentsRead, tags=["me"])
def put_my_consents(body: schemas.ConsentsUpdate):
    """Record the customer's choice per channel, with the disclosure shown beside the card page's toggles.

    For a customer token. Each channel sent (push, sms, email, location) is recorded as a new consent
    row with the disclosure and the caller's IP address, so the history of what was agreed to stays;
    channels not sent keep their last choice. The answer is the current choice of every channel.
    """
    session, customer_id = get_session(), current_customer_id()
    service.record_consents(
        session=session,
        customer=session.get_one(Customer, customer_id),
        consents={Channel(name.value): granted for name, granted in body.consents.items()},
        source="card-page",
        disclosure=body.disclosure,
        ip_address=request.remote_addr,
    )
    session.flush()
    current = service.current_consents(session=session, customer_id=customer_id)
    return schemas.ConsentsRead(consents={channel.value: consent.granted for channel, consent in current.items()})


@bp.put("/customers/<int:customer_id>/consents")
@endpoint(
    roles=STAFF_WRITERS, body=schemas.ConsentsUpdate, response=schemas.ConsentsRead, tags=["customers"], errors=[404]
)
def put_customer_consents(customer_id: int, body: schemas.ConsentsUpdate):
    """Record a choice the customer gave staff (by phone, at the desk); the audit log names who.

    Admins and marketers. `disclosure` is what the customer was told or read out. As on the card
    page, each channel sent becomes a new consent row, recorded as given through this staff user;
    the answer is the current choice of every channel. 404 when there is no such customer.
    """
    session = get_session()
    customer = get_or_404(session, Customer, customer_id)
    service.record_consents(
        session=session,
        customer=customer,
        consents={Channel(name.value): granted for name, granted in body.consents.items()},
        source=f"staff:{current_user_id()}",
        disclosure=body.disclosure,
        ip_address=None,
    )  # the customer's address is not known; the audit has the staff's
    session.flush()
    current = service.current_consents(session=session, customer_id=customer_id)
    return schemas.ConsentsRead(consents={channel.value: consent.granted for channel, consent in current.items()})


# --- program and catalog -------------------------------------------------------------------


@bp.get("/program")
@endpoint(roles=ALL_STAFF, response=schemas.ProgramRead, tags=["program"])
def get_program():
    """The loyalty program's earning rules (all staff).

    Points per unit of currency and how they round, when points expire, the window tier thresholds
    count over, the sign-up and referral bonuses, the program's time zone and the barcode format of
    its cards.
    """
    return _program()


@bp.patch("/program")
@endpoint(roles=ADMIN, body=schemas.ProgramUpdate, response=schemas.ProgramRead, tags=["program"])
def update_program(body: schemas.ProgramUpdate):
    """Change earning rules; points already earned keep their expiry.

    Admins only. Only the fields sent change, from the next purchase on; nothing already in the
    ledger is recomputed. A field that needs a value cannot be set to null (422).
    """
    return service.update_program(session=get_session(), program=_program(), changes=body)


# --- the catalogue: rewards, tiers, promotions (app/loyalty/catalog.py) ---------------------------


@bp.get("/rewards")
@endpoint(roles=ALL_STAFF, response=list[schemas.RewardRead], tags=["rewards"])
def list_rewards():
    """The program's rewards, retired ones included (`active` says which).

    Every staff role reads the catalogue: the till offers what a card can afford from it."""
    return catalog.list_entries(session=get_session(), model=Reward, program_id=_program().id)


@bp.post("/rewards")
@endpoint(
    roles=STAFF_WRITERS,
    body=schemas.RewardCreate,
    response=schemas.RewardRead,
    status=201,
    tags=["rewards"],
    errors=[409],
)
def create_reward(body: schemas.RewardCreate):
    """Add a reward: a discount, a free item, a gift card, a charity donation or a tier upgrade.

    Admins and marketers. A gift card or donation names its value; a tier upgrade names the tier (of
    this program) and how many days it lasts. An optional stock limits how many can be redeemed."""
    return catalog.create_entry(session=get_session(), model=Reward, program_id=_program().id, values=body)


@bp.get("/rewards/<int:reward_id>")
@endpoint(roles=ALL_STAFF, response=schemas.RewardRead, tags=["rewards"], errors=[404])
def get_reward(reward_id: int):
    """One reward of the program.

    404 when the id is not a reward of this program."""
    return catalog.get_entry(session=get_session(), model=Reward, program_id=_program().id, entry_id=reward_id)


@bp.patch("/rewards/<int:reward_id>")
@endpoint(
    roles=STAFF_WRITERS, body=schemas.RewardUpdate, response=schemas.RewardRead, tags=["rewards"], errors=[404, 409]
)
def update_reward(reward_id: int, body: schemas.RewardUpdate):
    """Change a reward; only the fields sent change.

    Admins and marketers. Redemptions already made keep the points they cost. A null for a field that
    must have a value is a 422."""
    session = get_session()
    entry = catalog.get_entry(session=session, model=Reward, program_id=_program().id, entry_id=reward_id)
    return catalog.update_entry(session=session, entry=entry, changes=body)


@bp.delete("/rewards/<int:reward_id>")
@endpoint(roles=STAFF_WRITERS, tags=["rewards"], errors=[404, 409])
def delete_reward(reward_id: int):
    """Retire a reward: it leaves the till and the cards.

    Admins and marketers. The row stays (redemptions point at it) with `active` false; nothing is deleted."""
    session = get_session()
    entry = catalog.get_entry(session=session, model=Reward, program_id=_program().id, entry_id=reward_id)
    catalog.remove_entry(session=session, entry=entry)


@bp.get("/tiers")
@endpoint(roles=ALL_STAFF, response=list[schemas.TierRead], tags=["tiers"])
def list_tiers():
    """The program's tiers, from the lowest threshold.

    Every staff role reads them. A customer holds the highest tier whose threshold their qualifying
    points in the rolling window reach."""
    return catalog.list_entries(session=get_session(), model=Tier, program_id=_program().id)


@bp.post("/tiers")
@endpoint(roles=ADMIN, body=schemas.TierCreate, response=schemas.TierRead, status=201, tags=["tiers"], errors=[409])
def create_tier(body: schemas.TierCreate):
    """Add a tier (admin): a name, a threshold of qualifying points, a points multiplier and its benefits.

    Two tiers of one program cannot share a threshold (409). Customers move into it at their next
    purchase or the nightly recalculation."""
    return catalog.create_entry(session=get_session(), model=Tier, program_id=_program().id, values=body)


@bp.get("/tiers/<int:tier_id>")
@endpoint(roles=ALL_STAFF, response=schemas.TierRead, tags=["tiers"], errors=[404])
def get_tier(tier_id: int):
    """One tier of the program.

    404 when the id is not a tier of this program."""
    return catalog.get_entry(session=get_session(), model=Tier, program_id=_program().id, entry_id=tier_id)


@bp.patch("/tiers/<int:tier_id>")
@endpoint(roles=ADMIN, body=schemas.TierUpdate, response=schemas.TierRead, tags=["tiers"], errors=[404, 409])
def update_tier(tier_id: int, body: schemas.TierUpdate):
    """Change a tier (admin); only the fields sent change.

    A threshold another tier already has is a 409. Customers are re-tiered at their next purchase or the
    nightly recalculation."""
    session = get_session()
    entry = catalog.get_entry(session=session, model=Tier, program_id=_program().id, entry_id=tier_id)
    return catalog.update_entry(session=session, entry=entry, changes=body)


@bp.delete("/tiers/<int:tier_id>")
@endpoint(roles=ADMIN, tags=["tiers"], errors=[404, 409])
def delete_tier(tier_id: int):
    """Delete a tier (admin) that nothing uses.

    409 while customers hold it or a tier-upgrade reward names it: move them or retire the reward first."""
    session = get_session()
    entry = catalog.get_entry(session=session, model=Tier, program_id=_program().id, entry_id=tier_id)
    catalog.remove_entry(session=session, entry=entry)


@bp.get("/promotions")
@endpoint(roles=STAFF_WRITERS, response=list[schemas.PromotionRead], tags=["promotions"])
def list_promotions():
    """The program's promotions, ended and retired ones included (admins and marketers).

    A promotion multiplies the points of purchases in its window, optionally at one store or for one
    tier; the best one applies."""
    return catalog.list_entries(session=get_session(), model=Promotion, program_id=_program().id)


@bp.post("/promotions")
@endpoint(
    roles=STAFF_WRITERS,
    body=schemas.PromotionCreate,
    response=schemas.PromotionRead,
    status=201,
    tags=["promotions"],
    errors=[409],
)
def create_promotion(body: schemas.PromotionCreate):
    """Add a promotion (admins and marketers): a multiplier over a date window.

    An optional store or tier must belong to this program (422 otherwise). Promotions do not stack: a
    purchase gets the best multiplier that applies, on top of its tier's."""
    return catalog.create_entry(session=get_session(), model=Promotion, program_id=_program().id, values=body)


@bp.get("/promotions/<int:promotion_id>")
@endpoint(roles=STAFF_WRITERS, response=schemas.PromotionRead, tags=["promotions"], errors=[404])
def get_promotion(promotion_id: int):
    """One promotion of the program (admins and marketers).

    404 when the id is not a promotion of this program."""
    return catalog.get_entry(session=get_session(), model=Promotion, program_id=_program().id, entry_id=promotion_id)


@bp.patch("/promotions/<int:promotion_id>")
@endpoint(
    roles=STAFF_WRITERS,
    body=schemas.PromotionUpdate,
    response=schemas.PromotionRead,
    tags=["promotions"],
    errors=[404, 409],
)
def update_promotion(promotion_id: int, body: schemas.PromotionUpdate):
    """Change a promotion (admins and marketers); only the fields sent change.

    Purchases already made keep the points they earned."""
    session = get_session()
    entry = catalog.get_entry(session=session, model=Promotion, program_id=_program().id, entry_id=promotion_id)
    return catalog.update_entry(session=session, entry=entry, changes=body)


@bp.delete("/promotions/<int:promotion_id>")
@endpoint(roles=STAFF_WRITERS, tags=["promotions"], errors=[404, 409])
def delete_promotion(promotion_id: int):
    """Retire a promotion (admins and marketers): it stops applying at once.

    The row stays (purchases point at it) with `active` false."""
    session = get_session()
    entry = catalog.get_entry(session=session, model=Promotion, program_id=_program().id, entry_id=promotion_id)
    catalog.remove_entry(session=session, entry=entry)
