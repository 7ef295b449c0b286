"""The signature on every delivery, and its check (for Python receivers; the recipe is in the README).

    Pointcard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

After a rotation, for as long as the old secret is honoured, a second v1 is made with it: a
receiver accepts the request when any v1 matches its secret.

The timestamp is inside the signed text, so a captured request cannot be replayed later with a
fresh timestamp; receivers refuse signatures older than a few minutes. Each attempt is signed
anew, so a retry hours later still passes that check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(*, secrets_: list[str], body: bytes, timestamp: int) -> str:
    """One v1 per secret: two while a rotated-out secret is still honoured."""
    return ",".join([f"t={timestamp}"] + [f"v1={_digest(secret, body, timestamp)}" for secret in secrets_])


def verify(
    *, secret: str, body: bytes, header: str, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """True when one v1 signature matches and the timestamp is recent."""
    fields = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value for name, value in fields if name.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = _digest(secret, body, timestamp)
    return any(name.strip() == "v1" and hmac.compare_digest(value.strip(), expected) for name, value in fields)
