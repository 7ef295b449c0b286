"""Handles on the app's shared objects, for code that runs inside a request."""

from __future__ import annotations

from fnmatch import fnmatch

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.orm import Session

from app.auth.tokens import verify_token
from app.config import Settings
from app.db import Database
from app.errors import Unauthorized


def _public_rate_limit() -> str:
    return get_settings().public_rate_limit


def _not_limited_per_ip() -> bool:
    """Exempt from the per-IP limit: probes, signed webhooks (their senders come from a few busy
    addresses) and callers with a valid token, who are limited per account (app/auth/abuse.py)."""
    if any(fnmatch(request.endpoint or "", pattern) for pattern in get_settings().rate_limit_exempt_endpoints):
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    settings = get_settings()
    try:
        verify_token(
            token.strip(), secret=settings.signing_secret(), issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
    except Unauthorized:
        return False
    return True


# Per client IP: the application-wide limit on every route, plus tighter per-route limits
# (enrolment, login) declared on the views.
limiter = Limiter(
    key_func=get_remote_address,
    default_limits=[],
    headers_enabled=True,
    application_limits=[_public_rate_limit],
    application_limits_exempt_when=_not_limited_per_ip,
)


def get_settings() -> Settings:
    return current_app.extensions["settings"]


def get_db() -> Database:
    return current_app.extensions["database"]


def get_session() -> Session:
    return get_db().session()
