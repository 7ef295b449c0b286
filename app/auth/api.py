from __future__ import annotations

from datetime import timedelta

from flask import Blueprint
from sqlalchemy import select

from app.api import endpoint
from app.auth import service
from app.auth.abuse import abuse_guard
from app.auth.models import StaffUser
from app.auth.schemas import (
    CardTokenRequest,
    StaffUserCreate,
    StaffUserRead,
    StaffUserUpdate,
    TokenRequest,
    TokenResponse,
)
from app.auth.tokens import Principal, Role, issue_token
from app.crud import get_or_404
from app.errors import Unauthorized
from app.extensions import get_session, get_settings, limiter
from app.loyalty.service import card_by_access_token
from app.schemas import Page

bp = Blueprint("auth", __name__, url_prefix="/api/v1")


def _token_response(principal: Principal, minutes: int) -> TokenResponse:
    settings = get_settings()
    token = issue_token(
        principal,
        secret=settings.signing_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        lifetime=timedelta(minutes=minutes),
    )
    return TokenResponse(access_token=token, expires_in=minutes * 60, role=principal.role)


@bp.post("/auth/token")
@limiter.limit(lambda: get_settings().login_rate_limit)
@endpoint(roles=None, body=TokenRequest, response=TokenResponse, tags=["auth"], errors=[401, 429])
def create_token(body: TokenRequest):
    """Log a staff user in: a short-lived bearer token for their role.

    After `login_lockout_attempts` failures for one e-mail within the window, every attempt
    for it is refused with 429 for the lockout period, whether the e-mail exists or not."""
    guard = abuse_guard()
    guard.refuse_locked_login(body.email)
    try:
        user = service.authenticate(session=get_session(), email=body.email, password=body.password)
    except Unauthorized:
        guard.login_failed(body.email)
        raise
    guard.login_succeeded(body.email)
    return _token_response(service.principal_for(user), get_settings().staff_token_minutes)


@bp.post("/auth/card")
@limiter.limit(lambda: get_settings().login_rate_limit)
@endpoint(roles=None, body=CardTokenRequest, response=TokenResponse, tags=["auth"], errors=[404, 429])
def create_card_token(body: CardTokenRequest):
    """Exchange the card page's secret for a customer token scoped to that customer."""
    card = card_by_access_token(session=get_session(), access_token=body.card_token)
    principal = Principal(role=Role.customer, customer_id=card.customer_id)
    return _token_response(principal, get_settings().customer_token_minutes)


@bp.post("/users")
@endpoint(roles=[Role.admin], body=StaffUserCreate, response=StaffUserRead, status=201, tags=["auth"], errors=[409])
def create_staff_user(body: StaffUserCreate):
    """Create a staff user (admin only); cashiers are bound to a store."""
    return service.create_user(
        session=get_session(), email=body.email, password=body.password, role=body.role, store_id=body.store_id
    )


@bp.get("/users")
@endpoint(roles=[Role.admin], query=Page, response=list[StaffUserRead], tags=["auth"])
def list_staff_users(query: Page):
    """Staff users (admin only)."""
    return list(get_session().scalars(select(StaffUser).order_by(StaffUser.id).limit(query.limit).offset(query.offset)))


@bp.patch("/users/<int:user_id>")
@endpoint(roles=[Role.admin], body=StaffUserUpdate, response=StaffUserRead, tags=["auth"], errors=[404, 409])
def update_staff_user(user_id: int, body: StaffUserUpdate):
    """Change a staff user's role, store or active flag (admin only; audited).

    Their tokens stop working at once; the last active admin cannot be demoted or disabled."""
    user = get_or_404(get_session(), StaffUser, user_id)
    return service.update_user(session=get_session(), user=user, changes=body.model_dump(exclude_unset=True))
