"""Issue and verify the service's JWTs. The algorithm is pinned: a token never chooses it.

Core: staff log in through auth, customers through their card (loyalty); both get these tokens.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Literal

import jwt
from pydantic import BaseModel, Field

from app.config import Settings
from app.db import utcnow
from app.errors import Unauthorized
from app.roles import Principal, Role

ALGORITHM = "HS256"


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    role: Role


def issue_token(principal: Principal, *, secret: str, issuer: str, audience: str, lifetime: timedelta) -> str:
    now = utcnow()
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "sub": principal.subject,
        "role": principal.role.value,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    if principal.store_id is not None:
        claims["store_id"] = principal.store_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def token_response(principal: Principal, *, settings: Settings, minutes: int) -> TokenResponse:
    """A bearer token for the principal with this deployment's issuer, audience and secret."""
    token = issue_token(
        principal,
        secret=settings.signing_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        lifetime=timedelta(minutes=minutes),
    )
    return TokenResponse(access_token=token, expires_in=minutes * 60, role=principal.role)


def verify_token(token: str, *, secret: str, issuer: str, audience: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired; ask for a new one.") from exc
    except jwt.InvalidAudienceError as exc:
        raise Unauthorized("The access token was not issued for this API.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"The access token is not valid: {exc}.") from exc
    return _principal_from_claims(claims)


def _principal_from_claims(claims: dict) -> Principal:
    try:
        role = Role(claims["role"])
        kind, _, raw_id = str(claims["sub"]).partition(":")
        subject_id = int(raw_id)
    except (KeyError, ValueError) as exc:
        raise Unauthorized("The access token's subject or role is malformed.") from exc
    if role is Role.customer:
        if kind != "customer":
            raise Unauthorized("The access token's subject does not match its role.")
        return Principal(role=role, customer_id=subject_id)
    if kind != "user":
        raise Unauthorized("The access token's subject does not match its role.")
    store_id = claims.get("store_id")
    return Principal(role=role, user_id=subject_id, store_id=int(store_id) if store_id is not None else None)
