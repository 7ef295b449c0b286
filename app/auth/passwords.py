"""Password hashing with scrypt (memory-hard, in the standard library)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

# log2 of scrypt's N. 15 (N=2**15) costs ~32 MiB and ~60 ms here: slow for guessing, fine for a
# login. Each hash records its own N, so a stored hash verifies whatever the setting is now.
PRODUCTION_COST = 15
_R, _P = 8, 1
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, cost: int = PRODUCTION_COST) -> str:
    n, salt = 2**cost, secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${n}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def dummy_hash(cost: int) -> str:
    """Verifying against this when the e-mail is unknown keeps login time the same either way."""
    return hash_password(secrets.token_urlsafe(16), cost=cost)
