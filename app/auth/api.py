from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select

from app.api import endpoint
from app.auth import service
from app.auth.models import StaffUser
from app.auth.schemas import StaffUserCreate, StaffUserRead, StaffUserUpdate, TokenRequest
from app.crud import get_or_404
from app.errors import Unauthorized
from app.extensions import current_services, get_session, get_settings, limiter
from app.roles import Role
from app.schemas import Page
from app.tokens import TokenResponse, token_response

bp = Blueprint("auth", __name__, url_prefix="/api/v1")


@bp.post("/auth/token")
@limiter.limit(lambda: get_settings().login_rate_limit)
@endpoint(roles=None, body=TokenRequest, response=TokenResponse, tags=["auth"], errors=[401, 429])
def create_token(body: TokenRequest):
    """Log a staff user in: a short-lived bearer token for their role.

    Public. A wrong e-mail, a wrong password and a disabled account get the same 401, so the answer
    does not tell which accounts exist. After `login_lockout_attempts` failures for one e-mail within
    the window, every attempt for it is refused with 429 for the lockout period, whether the e-mail
    exists or not; the endpoint is also rate-limited per IP address.
    """
    guard = current_services().abuse_guard
    guard.refuse_locked_login(body.email)
    try:
        user = service.authenticate(
            session=get_session(),
            email=body.email,
            password=body.password,
            password_cost=get_settings().password_hash_cost,
        )
    except Unauthorized:
        guard.login_failed(body.email)
        raise
    guard.login_succeeded(body.email)
    settings = get_settings()
    return token_response(service.principal_for(user), settings=settings, minutes=settings.staff_token_minutes)


@bp.post("/users")
@endpoint(roles=[Role.admin], body=StaffUserCreate, response=StaffUserRead, status=201, tags=["auth"], errors=[409])
def create_staff_user(body: StaffUserCreate):
    """Create a staff user (admin only); cashiers are bound to a store.

    A cashier needs a `store_id` of this program and only ever acts for that store at the till; admins
    and marketers have none. Customers are not staff: they enrol. Passwords have at least 10
    characters; an e-mail already taken is a 409.
    """
    return service.create_user(
        session=get_session(),
        email=body.email,
        password=body.password,
        role=body.role,
        store_id=body.store_id,
        password_cost=get_settings().password_hash_cost,
    )


@bp.get("/users")
@endpoint(roles=[Role.admin], query=Page, response=list[StaffUserRead], tags=["auth"])
def list_staff_users(query: Page):
    """Staff users (admin only), in the order they were created.

    Disabled accounts are listed too (`active: false`), so an admin can find and re-enable them.
    Passwords are never returned.
    """
    return list(get_session().scalars(select(StaffUser).order_by(StaffUser.id).limit(query.limit).offset(query.offset)))


@bp.patch("/users/<int:user_id>")
@endpoint(roles=[Role.admin], body=StaffUserUpdate, response=StaffUserRead, tags=["auth"], errors=[404, 409])
def update_staff_user(user_id: int, body: StaffUserUpdate):
    """Change a staff user's role, store or active flag (admin only; audited).

    Only the fields sent change. The user's existing tokens stop working at once, so a demotion or a
    disabled account takes effect on the next request rather than when the token expires. The last
    active admin cannot be demoted or disabled (409), so the service is never left without one.
    """
    user = get_or_404(get_session(), StaffUser, user_id)
    return service.update_user(session=get_session(), user=user, changes=body.model_dump(exclude_unset=True))
