"""Encryption at rest for contact fields: AES-256-GCM with a key id per value, and a blind index.

A stored value reads `v1.<key id>.<base64url(nonce | ciphertext | tag)>`. The column's name is
the associated data, so a ciphertext copied into another column (or another row's email into
phone) fails to decrypt instead of being read as something it is not. The key id in every
value is what lets keys rotate: new writes use the current key, old values stay readable while
their key is listed, and `flask privacy rotate-key` re-encrypts them.

Equality lookups cannot use the ciphertext (a fresh nonce each time), so each encrypted column
has a blind index beside it: HMAC-SHA256 of the normalised value under a separate index key.

The keyring is process-wide because the column type encrypts deep inside SQLAlchemy, where no
app is in reach: the wiring (`app/wiring.py`) configures it from the settings of the process
(web, worker, scheduler); a script that builds no application (a migration) gets it built from
the environment on first use.

Core: models of any domain use these column types; the privacy package owns what is done with
the keys (rotation, export, erasure).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy import String, Text
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator

VERSION = "v1"
KEY_FILE = "privacy_keys.json"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class EncryptionKeys(BaseModel):
    """The keys of the contact fields; `PrivacySettings` (POINTCARD_PRIVACY__*) carries them.

    KEYS is a JSON object of key id -> 32 random bytes in base64, e.g.
    POINTCARD_PRIVACY__KEYS='{"2026a": "..."}'. New values are encrypted with CURRENT_KEY_ID;
    older keys stay listed until `flask privacy rotate-key` has re-encrypted their values.
    INDEX_KEY (base64, 32 bytes) keys the blind index that equality lookups use; it cannot
    rotate without re-indexing, so it is separate from the encryption keys.
    Without them a development install keeps generated keys in instance/privacy_keys.json;
    production refuses to start.
    """

    # The contact fields' encryption keys (AES-256-GCM), as JSON: key id -> 32 random bytes in base64.
    keys: dict[str, SecretStr] = Field(default_factory=dict)
    # The key new values are encrypted with; the others stay listed until rotate-key has moved
    # their values.
    current_key_id: str | None = None
    # Keys the blind index (HMAC-SHA256) that equality lookups use: 32 bytes in base64. It cannot
    # rotate without re-indexing, so it is not one of the encryption keys.
    index_key: SecretStr | None = None


class PrivacyKeyError(ValueError):
    """A key is missing or malformed: the configuration is wrong, not the data."""


def _decode_key(name: str, encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise PrivacyKeyError(f"privacy key {name!r} is not base64") from exc
    if len(key) != 32:
        raise PrivacyKeyError(f"privacy key {name!r} must be 32 bytes (it is {len(key)})")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    current_key_id: str
    index_key: bytes

    def __post_init__(self) -> None:
        for key_id in self.keys:
            if not _KEY_ID.match(key_id):
                raise PrivacyKeyError(f"privacy key id {key_id!r}: use 1-32 letters, digits, '-' or '_'")
        if self.current_key_id not in self.keys:
            raise PrivacyKeyError(f"the current privacy key {self.current_key_id!r} is not among the keys")

    def encrypt(self, plaintext: str, *, column: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.current_key_id]).encrypt(nonce, plaintext.encode(), column.encode())
        return f"{VERSION}.{self.current_key_id}.{_b64(nonce + sealed)}"

    def decrypt(self, stored: str, *, column: str) -> str:
        _version, key_id, payload = _split(stored)
        if key_id not in self.keys:
            raise PrivacyKeyError(f"a value in {column} is encrypted with key {key_id!r}, which is not configured")
        data = _unb64(payload)
        return AESGCM(self.keys[key_id]).decrypt(data[:12], data[12:], column.encode()).decode()

    def blind_index(self, value: str, *, column: str) -> str:
        message = f"{column}\x00{normalise(value, column=column)}".encode()
        return hmac.new(self.index_key, message, hashlib.sha256).hexdigest()


def _split(stored: str) -> tuple[str, str, str]:
    parts = stored.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise ValueError("not an encrypted value (expected v1.<key id>.<data>)")
    return parts[0], parts[1], parts[2]


def key_id_of(stored: str) -> str:
    return _split(stored)[1]


def normalise(value: str, *, column: str) -> str:
    """One spelling per address, so the index finds 'Ann@X.org ' as 'ann@x.org'."""
    value = value.strip()
    if column.endswith("email"):
        return value.lower()
    if column.endswith("phone"):
        try:
            number = phonenumbers.parse(value, None)
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            return re.sub(r"[^\d+]", "", value)
    return value


# --- the process's keyring ---------------------------------------------------------------------

_keyring: Keyring | None = None


def keyring_from_settings(settings: EncryptionKeys, *, env: str, instance_dir: Path) -> Keyring:
    """The configured keys; in development, keys generated once into instance/; never in production."""
    if settings.keys or settings.current_key_id or settings.index_key:
        if not (settings.keys and settings.current_key_id and settings.index_key):
            raise PrivacyKeyError("set POINTCARD_PRIVACY__KEYS, __CURRENT_KEY_ID and __INDEX_KEY together")
        keys = {key_id: _decode_key(key_id, secret.get_secret_value()) for key_id, secret in settings.keys.items()}
        return Keyring(keys, settings.current_key_id, _decode_key("index", settings.index_key.get_secret_value()))
    if env == "production":
        raise PrivacyKeyError("POINTCARD_PRIVACY__KEYS, __CURRENT_KEY_ID and __INDEX_KEY must be set in production")
    return _development_keyring(instance_dir)


def _development_keyring(instance_dir: Path) -> Keyring:
    path = instance_dir / KEY_FILE
    if not path.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        document = {"keys": {"dev1": generate_key()}, "current_key_id": "dev1", "index_key": generate_key()}
        path.write_text(json.dumps(document, indent=2))
        path.chmod(0o600)
    document = json.loads(path.read_text())
    keys = {key_id: _decode_key(key_id, value) for key_id, value in document["keys"].items()}
    return Keyring(keys, document["current_key_id"], _decode_key("index", document["index_key"]))


def generate_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def configure(keys: EncryptionKeys, *, env: str, instance_dir: Path) -> Keyring:
    """Make these keys the process's (the wiring calls it with the application's settings)."""
    global _keyring
    _keyring = keyring_from_settings(keys, env=env, instance_dir=instance_dir)
    return _keyring


def use(keyring: Keyring | None) -> Keyring | None:
    """Swap the process's keyring (key rotation in tests); returns the previous one."""
    global _keyring
    previous, _keyring = _keyring, keyring
    return previous


def keyring() -> Keyring:
    if _keyring is None:
        # A process that built no application (a migration, a script): read the environment.
        from app.config import INSTANCE_DIR, Settings

        settings = Settings()
        configure(settings.privacy, env=settings.env, instance_dir=INSTANCE_DIR)
    assert _keyring is not None
    return _keyring


def blind_index(value: str | None, *, column: str) -> str | None:
    return None if value is None else keyring().blind_index(value, column=column)


# --- the column type ---------------------------------------------------------------------------


class EncryptedString(TypeDecorator[str]):
    """A string stored encrypted; reads give the plaintext back.

    Comparing the column in SQL is refused (each encryption differs, so `==` would silently
    match nothing): compare its blind index instead. `IS NULL` still works.
    """

    impl = String(512)
    cache_ok = True

    class comparator_factory(TypeDecorator.Comparator):
        def operate(self, op, *other, **kwargs):
            if op not in (operators.is_, operators.is_not):
                raise TypeError("an encrypted column cannot be compared in SQL; compare its blind index")
            return super().operate(op, *other, **kwargs)

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        return None if value is None else keyring().encrypt(value, column=self.column)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        return None if value is None else keyring().decrypt(value, column=self.column)


class EncryptedJSON(TypeDecorator[dict]):
    """A JSON document stored encrypted (one that carries contact details, such as a webhook's
    event with its customer); it is never queried by content."""

    impl = Text
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def process_bind_param(self, value: dict | None, dialect) -> str | None:
        return (
            None if value is None else keyring().encrypt(json.dumps(value, separators=(",", ":")), column=self.column)
        )

    def process_result_value(self, value: str | None, dialect) -> dict | None:
        return None if value is None else json.loads(keyring().decrypt(value, column=self.column))
