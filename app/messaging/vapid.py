"""VAPID keys (RFC 8292): the server's identity towards push services.

Kept apart from the sender so the web process can serve the public key without loading
pywebpush.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.messaging.config import MessagingSettings


def generate_vapid_key(path: Path, *, force: bool = False) -> tuple[bool, str]:
    """Write a P-256 private key (PEM, mode 0600) unless one exists; (created, public key)."""
    if path.exists() and not force:
        return False, public_key_of(path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)
    return True, public_key_of(pem)


def public_key_of(pem: bytes) -> str:
    """The applicationServerKey browsers subscribe with: the raw point, base64url without padding."""
    key = serialization.load_pem_private_key(pem, password=None)
    raw = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def private_pem(settings: MessagingSettings) -> bytes | None:
    if settings.vapid_private_key is not None:
        return settings.vapid_private_key.get_secret_value().encode()
    if settings.vapid_private_key_file.exists():
        return settings.vapid_private_key_file.read_bytes()
    return None


def public_key(settings: MessagingSettings) -> str | None:
    pem = private_pem(settings)
    return public_key_of(pem) if pem else None
