from __future__ import annotations

from flask import Blueprint, request
from sqlalchemy import select

from app.api import current_principal, endpoint
from app.auth.tokens import Role
from app.crud import apply_changes, get_or_404
from app.errors import Conflict, Unprocessable
from app.extensions import get_session, get_settings, limiter
from app.loyalty import schemas, service
from app.loyalty.ledger import lock_customer
from app.loyalty.models import Card, Channel, Customer, LedgerEntry, Promotion, Reward, Store, Tier
from app.loyalty.transactions import adjust_points
from app.privacy.crypto import blind_index

bp = Blueprint("loyalty", __name__, url_prefix="/api/v1")

ADMIN = [Role.admin]
STAFF_WRITERS = [Role.admin, Role.marketer]
ALL_STAFF = [Role.admin, Role.marketer, Role.cashier]


def card_links(card: Card) -> dict[str, str]:
    base = get_settings().public_base_url.rstrip("/")
    return {
        "card_url": f"{base}/card/{card.access_token}",
        "apple_pass_url": f"{base}/wallet/apple/{card.access_token}.pkpass",
        "google_save_url": f"{base}/wallet/google/{card.access_token}",
    }


def _program():
    return service.get_program(session=get_session())


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
    """Enrol a customer and issue their card (public; rate-limited per IP)."""
    customer = service.enroll_customer(
        session=get_session(),
        program=_program(),
        first_name=body.first_name,
        last_name=body.last_name,
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
    """Find customers by e-mail, phone or member number, or page through them."""
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
    """One customer with balance and tier."""
    return customer_read(get_or_404(get_session(), Customer, customer_id))


@bp.get("/customers/<int:customer_id>/ledger")
@endpoint(
    roles=STAFF_WRITERS, query=schemas.Page, response=list[schemas.LedgerEntryRead], tags=["customers"], errors=[404]
)
def customer_ledger(customer_id: int, query: schemas.Page):
    """The customer's ledger, newest first."""
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
    """Correct a balance by hand (admin): recorded in the ledger with the reason."""
    get_or_404(get_session(), Customer, customer_id)
    return adjust_points(
        session=get_session(),
        customer_id=customer_id,
        points=body.points,
        reason=body.reason,
        staff_user_id=current_principal().user_id,
    )


@bp.post("/customers/<int:customer_id>/card/rotate")
@endpoint(roles=ADMIN, response=schemas.CardRead, tags=["customers"], errors=[404])
def rotate_card(customer_id: int):
    """Issue a new barcode for a lost or shared card; the old one stops scanning."""
    customer = lock_customer(session=get_session(), customer_id=get_or_404(get_session(), Customer, customer_id).id)
    card = service.rotate_barcode(session=get_session(), card=customer.card)
    return schemas.CardRead(
        member_number=card.member_number, barcode=card.barcode_token, card_url=card_links(card)["card_url"]
    )


@bp.get("/me")
@endpoint(roles=[Role.customer], response=schemas.CustomerRead, tags=["me"])
def get_me():
    """The calling customer's own card: balance, tier, referral code."""
    return customer_read(get_or_404(get_session(), Customer, current_principal().customer_id))


@bp.get("/me/ledger")
@endpoint(roles=[Role.customer], query=schemas.Page, response=list[schemas.LedgerEntryRead], tags=["me"])
def get_my_ledger(query: schemas.Page):
    """The calling customer's points history, newest first."""
    return _ledger(current_principal().customer_id, query)


@bp.put("/me/consents")
@endpoint(roles=[Role.customer], body=schemas.ConsentsUpdate, response=schemas.ConsentsRead, tags=["me"])
def put_my_consents(body: schemas.ConsentsUpdate):
    """Record the customer's choice per channel, with the disclosure shown beside the card page's toggles."""
    session, customer_id = get_session(), current_principal().customer_id
    service.record_consents(
        session=session,
        customer=session.get(Customer, customer_id),
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

    `disclosure` is what the customer was told or read out."""
    session = get_session()
    customer = get_or_404(session, Customer, customer_id)
    service.record_consents(
        session=session,
        customer=customer,
        consents={Channel(name.value): granted for name, granted in body.consents.items()},
        source=f"staff:{current_principal().user_id}",
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
    """The loyalty program's earning rules."""
    return _program()


@bp.patch("/program")
@endpoint(roles=ADMIN, body=schemas.ProgramUpdate, response=schemas.ProgramRead, tags=["program"])
def update_program(body: schemas.ProgramUpdate):
    """Change earning rules; points already earned keep their expiry."""
    program = _program()
    apply_changes(program, body)
    return program


def _crud(name: str, model, create, update, read, roles_write, roles_read):
    """Register list/create/get/patch/delete for one catalog table of the program."""

    def _list():
        return list(get_session().scalars(select(model).where(model.program_id == _program().id).order_by(model.id)))

    def _create(body):
        _check_references(body)
        obj = model(program_id=_program().id, **body.model_dump())
        get_session().add(obj)
        _flush_unique(name)
        return obj

    def _get(object_id: int):
        return get_or_404(get_session(), model, object_id, program_id=_program().id)

    def _update(object_id: int, body):
        obj = _get(object_id)
        _check_references(body)
        apply_changes(obj, body)
        _flush_unique(name)
        return obj

    def _delete(object_id: int):
        obj = _get(object_id)
        if hasattr(obj, "active"):
            obj.active = False  # history points at it: retire, never delete
        else:
            _delete_unreferenced(obj)

    plural = f"{name}s"
    for rule, method, view, kwargs in (
        (f"/{plural}", "GET", _list, {"roles": roles_read, "response": list[read]}),
        (
            f"/{plural}",
            "POST",
            _create,
            {"roles": roles_write, "body": create, "response": read, "status": 201, "errors": [409]},
        ),
        (f"/{plural}/<int:object_id>", "GET", _get, {"roles": roles_read, "response": read, "errors": [404]}),
        (
            f"/{plural}/<int:object_id>",
            "PATCH",
            _update,
            {"roles": roles_write, "body": update, "response": read, "errors": [404, 409]},
        ),
        (f"/{plural}/<int:object_id>", "DELETE", _delete, {"roles": roles_write, "errors": [404, 409]}),
    ):
        view.__name__ = f"{method.lower()}_{name}" + ("" if "<" in rule or method == "POST" else "s")
        view.__doc__ = f"{method} {plural.replace('_', ' ')}" + ("" if method != "DELETE" else " (retires it)")
        bp.add_url_rule(rule, view.__name__, endpoint(tags=[plural], **kwargs)(view), methods=[method])


def _flush_unique(name: str) -> None:
    from sqlalchemy.exc import IntegrityError

    try:
        get_session().flush()
    except IntegrityError as exc:  # the one unique rule of the catalog: a tier's threshold
        raise Conflict(f"Another {name} of the program already has these values.") from exc


def _check_references(body) -> None:
    program_id = _program().id
    for field, model in (("store_id", Store), ("tier_id", Tier)):
        object_id = getattr(body, field, None)
        if object_id is not None:
            found = get_session().get(model, object_id)
            if found is None or found.program_id != program_id:
                raise Unprocessable(
                    f"There is no {field.removesuffix('_id')} {object_id} in this program.", field=field
                )


def _delete_unreferenced(obj) -> None:
    from sqlalchemy.exc import IntegrityError

    session = get_session()
    try:
        with session.begin_nested():
            session.delete(obj)
    except IntegrityError as exc:
        raise Conflict("It is still in use (customers or rewards point at it).") from exc


_crud("reward", Reward, schemas.RewardCreate, schemas.RewardUpdate, schemas.RewardRead, STAFF_WRITERS, ALL_STAFF)
_crud("tier", Tier, schemas.TierCreate, schemas.TierUpdate, schemas.TierRead, ADMIN, ALL_STAFF)
_crud(
    "promotion",
    Promotion,
    schemas.PromotionCreate,
    schemas.PromotionUpdate,
    schemas.PromotionRead,
    STAFF_WRITERS,
    STAFF_WRITERS,
)
