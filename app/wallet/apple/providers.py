"""APNs: the push that tells a device to fetch its updated pass.

One HTTP/2 POST per device to {host}/3/device/{push token}, topic = the pass type identifier,
payload `{}` (Wallet ignores anything in it: what the customer sees comes from the pass's
changeMessage). Authentication is a provider token (ES256 JWT from the team's .p8 key), or,
for accounts without a .p8 key, the Pass Type ID certificate as TLS client certificate.

The outbox drives the sender: 410 (or a bad token) drops the registration and gives up on
the message; 429 and 5xx retry later, honouring Retry-After.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import certifi
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.db import Database
from app.messaging.models import Message
from app.messaging.providers import RetryLater, Undeliverable
from app.wallet.apple.config import APPLE_APNS_HOSTS, AppleWalletSettings
from app.wallet.apple.service import forget_push_token
from app.wallet.apple.signing import APNS_KEY, APNS_KEY_INFO, CredentialsMissing, load_credentials

if TYPE_CHECKING:
    from app.wiring import Services

log = logging.getLogger(__name__)

# Apple refuses a provider token older than an hour and throttles one renewed more often than
# every 20 minutes: renewing at 50 minutes stays clear of both.
TOKEN_LIFETIME_SECONDS = 50 * 60
_DEAD_TOKEN_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"}


class PassPusher(Protocol):
    def send(self, message: Message) -> str:
        """Tell the device in the message that its pass changed; return APNs' id for the push."""

    def close(self) -> None: ...


class ProviderToken:
    """The ES256 JWT APNs wants in `authorization: bearer`, reused until it nears an hour."""

    def __init__(
        self,
        *,
        key: ec.EllipticCurvePrivateKey,
        key_id: str,
        team_id: str,
        clock: Callable[[], float] = time.time,
        lifetime: float = TOKEN_LIFETIME_SECONDS,
    ) -> None:
        self._key, self._key_id, self._team_id = key, key_id, team_id
        self._clock, self._lifetime = clock, lifetime
        self._token: str | None = None
        self._issued_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._issued_at >= self._lifetime:
                self._issued_at = now
                self._token = jwt.encode(
                    {"iss": self._team_id, "iat": int(now)}, self._key, algorithm="ES256", headers={"kid": self._key_id}
                )
            return self._token

    def discard(self) -> None:
        """APNs called the token expired (clock skew): the next push signs a fresh one."""
        with self._lock:
            self._token = None


def load_provider_token(settings: AppleWalletSettings) -> ProviderToken | None:
    """The .p8 token signer, or None when the account has no APNs key (certificate auth then)."""
    key_path = settings.certs_dir / APNS_KEY
    if not key_path.exists():
        return None
    info_path = settings.certs_dir / APNS_KEY_INFO
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    key_id = settings.apns_key_id or info.get("key_id")
    if not key_id:
        raise CredentialsMissing(f"{key_path} needs its key id: set POINTCARD_APPLE__APNS_KEY_ID or {info_path}")
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CredentialsMissing(f"{key_path} is not an APNs auth key (EC P-256)")
    return ProviderToken(key=key, key_id=key_id, team_id=info.get("team_id") or settings.team_id)


ClientCertificate = tuple[Path, Path, str | None]  # certificate file, key file, key password


def _ssl_context(settings: AppleWalletSettings, client_certificate: ClientCertificate | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    if settings.apns_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.apns_ca_file))
    if client_certificate is not None:
        certificate, key, password = client_certificate
        context.load_cert_chain(str(certificate), str(key), password)
    return context


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _reason(response: httpx.Response) -> tuple[str, datetime | None]:
    try:
        body = response.json()
    except ValueError:
        return "", None
    stamp = body.get("timestamp")
    return str(body.get("reason", "")), datetime.fromtimestamp(stamp / 1000, UTC) if stamp else None


class ApnsPusher:
    """The real sender: one HTTP/2 connection kept open for the worker's life."""

    def __init__(
        self,
        *,
        settings: AppleWalletSettings,
        database: Database,
        token: ProviderToken | None,
        client_certificate: ClientCertificate | None = None,
    ) -> None:
        if token is None and client_certificate is None:
            raise CredentialsMissing("APNs needs apns_key.p8 (token auth) or the Pass Type ID certificate")
        self._topic, self._token, self._database = settings.pass_type_id, token, database
        self._client = httpx.Client(
            http2=True,
            base_url=settings.apns_host.rstrip("/"),
            timeout=settings.apns_timeout_seconds,
            verify=_ssl_context(settings, client_certificate),
        )

    def _headers(self) -> dict[str, str]:
        # No apns-push-type or priority: Wallet's protocol names only the topic and the empty payload.
        headers = {"apns-topic": self._topic}
        if self._token is not None:
            headers["authorization"] = f"bearer {self._token.current()}"
        return headers

    def send(self, message: Message) -> str:
        push_token = message.content["push_token"]
        try:
            response = self._client.post(f"/3/device/{push_token}", content=b"{}", headers=self._headers())
        except httpx.TransportError as exc:
            raise RetryLater(f"APNs unreachable: {exc}") from exc
        if response.status_code == 200:
            return response.headers.get("apns-id", "")
        return self._failed(message, response)

    def _failed(self, message: Message, response: httpx.Response) -> str:
        reason, since = _reason(response)
        status = response.status_code
        if status == 410 or reason in _DEAD_TOKEN_REASONS:
            with self._database.transaction() as session:
                forget_push_token(
                    session=session,
                    registration_id=message.content["registration_id"],
                    push_token=message.content["push_token"],
                    invalid_since=since,
                )
            raise Undeliverable(f"APNs {status} {reason}: the device no longer takes updates of this pass")
        if status == 429 or status >= 500:
            raise RetryLater(f"APNs {status} {reason}", retry_after=_retry_after(response))
        if status == 403 and self._token is not None and reason == "ExpiredProviderToken":
            self._token.discard()
            raise RetryLater("APNs: provider token expired; signing a new one")
        if status == 403:
            # A certificate or key problem: retrying gives time to fix the credentials.
            raise RetryLater(f"APNs refused our credentials: {reason}", retry_after=300)
        raise Undeliverable(f"APNs {status} {reason}")

    def close(self) -> None:
        self._client.close()


class ConsolePusher:
    """For `make run` with development certificates: Apple would refuse them, so just log."""

    def send(self, message: Message) -> str:
        log.info(
            "[apple_wallet] would push pass %s to device token %s",
            message.content.get("serial_number"),
            message.content.get("push_token"),
        )
        return f"console-{message.id}"

    def close(self) -> None:
        pass


def _client_certificate(settings: AppleWalletSettings) -> ClientCertificate:
    credentials = load_credentials(settings)
    password = settings.pass_key_password.get_secret_value() if settings.pass_key_password else None
    return credentials.certificate_path, credentials.key_path, password


def make_pusher(services: Services) -> PassPusher:
    """The sender the settings ask for (the outbox's channel 'apple_wallet')."""
    settings: AppleWalletSettings = services.settings.apple
    if settings.apns_sender == "console":
        return ConsolePusher()
    token = load_provider_token(settings)
    if settings.apns_sender == "auto" and settings.apns_host.rstrip("/") in APPLE_APNS_HOSTS:
        try:
            development = load_credentials(settings).is_development
        except CredentialsMissing:
            development = True
        if development:
            log.warning("Apple Wallet: development credentials, so pass pushes are logged, not sent to Apple")
            return ConsolePusher()
    certificate = None if token is not None else _client_certificate(settings)
    return ApnsPusher(settings=settings, database=services.database, token=token, client_certificate=certificate)
