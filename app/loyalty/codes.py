"""Identifiers customers and cashiers see: unguessable where they grant anything."""

from __future__ import annotations

import base64
import secrets

# No 0/O, 1/I/L: codes are read aloud and typed at tills.
_READABLE = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def barcode_token() -> str:
    """128 random bits in RFC 4648 base32: scans in QR, PDF417, Aztec and Code128, typeable."""
    return "PC" + base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


def access_token() -> str:
    return secrets.token_urlsafe(24)


def readable_code(length: int) -> str:
    return "".join(secrets.choice(_READABLE) for _ in range(length))


def luhn_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return str((10 - total % 10) % 10)


def member_number() -> str:
    """Ten digits, random (not a row id), the last a Luhn check digit against typos."""
    body = str(secrets.randbelow(9 * 10**8) + 10**8)
    return body + luhn_digit(body)


def is_valid_member_number(value: str) -> bool:
    return len(value) == 10 and value.isdigit() and luhn_digit(value[:-1]) == value[-1]
