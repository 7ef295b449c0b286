"""Handles on the running application's parts: from a request or a flask command
(`current_services`), and from a session (`services_of`), for code that runs in a worker or a
job without Flask. The parts themselves are built in `app/wiring.py`."""

from __future__ import annotations

from fnmatch import fnmatch
from typing import TYPE_CHECKING

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database
from app.errors import Unauthorized
from app.tokens import verify_token

if TYPE_CHECKING:
    from app.wiring import Services

EXTENSION = "pointcard"
# Where a session finds the application that opened it (set on the session factory's info).
SESSION_KEY = "pointcard.services"


def current_services() -> Services:
    return current_app.extensions[EXTENSION]


def services_of(session: Session) -> Services:
    try:
        return session.info[SESSION_KEY]
    except KeyError:
        raise RuntimeError("this session's database was not wired: build it with app.wiring.build()") from None


def get_settings() -> Settings:
    return current_services().settings


def get_db() -> Database:
    return current_services().database


def get_session() -> Session:
    return get_db().session()


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
