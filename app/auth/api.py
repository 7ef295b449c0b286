from __future__ import annotations

from datetime import timedelta

from flask import Blueprint

from app.api import endpoint
from app.auth import service
from app.auth.schemas import CardTokenRequest, StaffUserCreate, StaffUserRead, TokenRequest, TokenResponse
from app.auth.tokens import Principal, Role, issue_token
from app.extensions import get_session, get_settings, limiter
from app.loyalty.service import card_by_access_token

bp = Blueprint("auth", __name__, url_prefix="/api/v1")


def _token_response(principal: Principal, minutes: int) -> TokenResponse:
    settings = get_settings()
    token = issue_token(
        principal, secret=settings.signing_secret(), issuer=settings.jwt_issuer,
        audience=settings.jwt_audience, lifetime=timedelta(minutes=minutes),
    )
    return TokenResponse(access_token=token, expires_in=minutes * 60, role=principal.role)


@bp.post("/auth/token")
@limiter.limit(lambda: get_settings().login_rate_limit)
@endpoint(roles=None, body=TokenRequest, response=TokenResponse, tags=["auth"], errors=[429])
def create_token(body: TokenRequest):
    """Log a staff user in: a short-lived bearer token for their role."""
    user = service.authenticate(session=get_session(), email=body.email, password=body.password)
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
@endpoint(roles=[Role.admin], body=StaffUserCreate, response=StaffUserRead, status=201, tags=["auth"],
          errors=[409])
def create_staff_user(body: StaffUserCreate):
    """Create a staff user (admin only); cashiers are bound to a store."""
    return service.create_user(session=get_session(), email=body.email, password=body.password,
                               role=body.role, store_id=body.store_id)
