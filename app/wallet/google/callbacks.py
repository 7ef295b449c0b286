"""Google's save/delete callbacks: the ECv2SigningOnly signed message, verified as Tink does.

Google signs an intermediate key with one of its root keys (published at the keys URL), and
the message with the intermediate key. Every signed string is length-prefixed (4 bytes,
little-endian) and concatenated:

    intermediate: sender_id || protocol_version || signedKey
    message:      sender_id || recipient_id (our issuer id) || protocol_version || signedMessage
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from collections.abc import Iterable

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import ValidationError

from app.errors import Problem
from app.wallet.google.schemas import CallbackRequest, SignedMessage

log = logging.getLogger("pointcard.google_wallet")

PROTOCOL = "ECv2SigningOnly"
_MAX_AGE = re.compile(r"max-age=(\d+)")


class CallbackMalformed(Problem):
    status, slug, title = 400, "callback-malformed", "Malformed callback"


class CallbackSignatureInvalid(Problem):
    status, slug, title = 401, "callback-signature-invalid", "Callback signature not valid"


class CallbackKeysUnavailable(Problem):
    status, slug, title = 503, "callback-keys-unavailable", "Google's signing keys are out of reach"


def length_value(*parts: str) -> bytes:
    return b"".join(len(data).to_bytes(4, "little") + data for data in (part.encode() for part in parts))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _load_ec_key(value: str) -> ec.EllipticCurvePublicKey:
    key = load_der_public_key(base64.b64decode(value, validate=True))
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 key")
    return key


def _verifies(keys: Iterable[ec.EllipticCurvePublicKey], signatures: Iterable[str], data: bytes) -> bool:
    for signature in signatures:
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            continue
        for key in keys:
            try:
                key.verify(raw, data, ec.ECDSA(hashes.SHA256()))
                return True
            except InvalidSignature:
                continue
    return False


class RootKeys:
    """Google's root signing keys, fetched from the keys URL and cached.

    On a failed verification the keys are fetched again (Google rotates them), but at most
    once a minute, so forged callbacks cannot turn us into a load on Google's key server.
    """

    def __init__(self, *, url: str, cache_seconds: int, timeout: float, min_refresh_seconds: float = 60) -> None:
        self.url, self.cache_seconds, self.timeout = url, cache_seconds, timeout
        self.min_refresh_seconds = min_refresh_seconds
        self._keys: list[ec.EllipticCurvePublicKey] = []
        self._fetched_at = self._expires_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, *, refresh: bool = False) -> list[ec.EllipticCurvePublicKey]:
        with self._lock:
            now = time.monotonic()
            stale = now >= self._expires_at
            may_refresh = refresh and now - self._fetched_at >= self.min_refresh_seconds
            if stale or may_refresh:
                self._fetch(now)
            return list(self._keys)

    def _fetch(self, now: float) -> None:
        try:
            response = requests.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise CallbackKeysUnavailable(f"Could not fetch Google's callback keys: {exc}") from exc
        self._keys = self._parse(document)
        match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
        self._fetched_at = now
        self._expires_at = now + (int(match.group(1)) if match else self.cache_seconds)

    @staticmethod
    def _parse(document: dict) -> list[ec.EllipticCurvePublicKey]:
        keys = []
        for entry in document.get("keys", []):
            try:
                # Like Tink: only this protocol's keys, and only those not yet expired.
                if entry.get("protocolVersion") == PROTOCOL and int(entry["keyExpiration"]) > _now_ms():
                    keys.append(_load_ec_key(entry["keyValue"]))
            except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                log.warning("skipping an unreadable Google callback key: %s", exc)
        if not keys:
            raise CallbackKeysUnavailable("Google's key list holds no current ECv2SigningOnly key.")
        return keys


def _intermediate_key(request: CallbackRequest, sender_id: str, root_keys: list) -> ec.EllipticCurvePublicKey | None:
    intermediate = request.intermediate_signing_key
    data = length_value(sender_id, PROTOCOL, intermediate.signed_key)
    if not _verifies(root_keys, intermediate.signatures, data):
        return None
    try:
        signed_key = json.loads(intermediate.signed_key)
        key = _load_ec_key(signed_key["keyValue"])
        expires_ms = int(signed_key["keyExpiration"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise CallbackMalformed(f"The intermediate signing key is unreadable: {exc}.") from exc
    if expires_ms <= _now_ms():
        raise CallbackSignatureInvalid("The callback's intermediate signing key has expired.")
    return key


def _verify_once(request: CallbackRequest, *, sender_ids: list[str], recipient_id: str, root_keys: list) -> bool:
    for sender_id in sender_ids:
        key = _intermediate_key(request, sender_id, root_keys)
        if key is None:
            continue
        data = length_value(sender_id, recipient_id, PROTOCOL, request.signed_message)
        if _verifies([key], [request.signature], data):
            return True
    return False


def verify_callback(
    request: CallbackRequest, *, sender_ids: list[str], recipient_id: str, keys: RootKeys
) -> SignedMessage:
    """The signed message, once both signatures hold; raises a Problem otherwise."""
    if request.protocol_version != PROTOCOL:
        raise CallbackMalformed(f"Only {PROTOCOL} callbacks are accepted, not {request.protocol_version!r}.")
    verified = _verify_once(request, sender_ids=sender_ids, recipient_id=recipient_id, root_keys=keys.get())
    if not verified:
        verified = _verify_once(
            request, sender_ids=sender_ids, recipient_id=recipient_id, root_keys=keys.get(refresh=True)
        )
    if not verified:
        raise CallbackSignatureInvalid("The callback is not signed by Google for this issuer.")
    try:
        return SignedMessage.model_validate_json(request.signed_message)
    except ValidationError as exc:
        raise CallbackMalformed(
            f"The signed message is not a save/delete event: {exc.error_count()} error(s)."
        ) from exc
