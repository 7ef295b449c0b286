"""The Pass Type ID certificate, its key and Apple's WWDR G4 intermediate: loaded once, then
used to sign every pass's manifest (detached PKCS#7, DER, SHA-256, with a signing time).

Files in settings.certs_dir (see certs.example/README.md):
    pass_certificate.pem   the Pass Type ID certificate
    pass_key.pem           its private key (PEM; encrypted with POINTCARD_APPLE__PASS_KEY_PASSWORD)
    wwdr_g4.pem            Apple Worldwide Developer Relations G4, the certificate that issued it
    apns_key.p8            optional APNs auth key, with apns_key.json {"key_id", "team_id"}
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from app.wallet.apple.config import AppleWalletSettings

PASS_CERTIFICATE = "pass_certificate.pem"
PASS_KEY = "pass_key.pem"
WWDR_CERTIFICATE = "wwdr_g4.pem"
# APNs token auth (providers.py): the .p8 key and {"key_id", "team_id"} beside it.
APNS_KEY = "apns_key.p8"
APNS_KEY_INFO = "apns_key.json"
_SIGN_OPTIONS = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]


class CredentialsMissing(Exception):
    """No signing credentials where the settings point: passes cannot be issued yet."""


class CredentialsInvalid(Exception):
    """Credentials that are there but unusable (wrong password, mismatched files, expired)."""


@dataclass(frozen=True)
class Credentials:
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    wwdr: x509.Certificate
    certificate_path: Path
    key_path: Path
    # True unless Apple issued the chain: such passes only open in tests and tools, not in Wallet.
    is_development: bool

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise CredentialsMissing(
            f"{path} not found: put the Apple Wallet credentials in {path.parent} "
            "(certs.example/README.md) or run 'flask wallet dev-certs'"
        ) from exc


def _load_key(path: Path, password: bytes | None):
    try:
        key = serialization.load_pem_private_key(_read(path), password=password)
    except (TypeError, ValueError) as exc:
        raise CredentialsInvalid(
            f"{path}: cannot read the private key ({exc}); check POINTCARD_APPLE__PASS_KEY_PASSWORD"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CredentialsInvalid(f"{path}: expected an RSA or EC key")
    return key


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(path))
    except ValueError as exc:
        raise CredentialsInvalid(f"{path}: not a PEM certificate ({exc})") from exc


def _check(settings: AppleWalletSettings, credentials: Credentials, wwdr_path: Path) -> None:
    certificate, path = credentials.certificate, credentials.certificate_path
    if certificate.public_key() != credentials.private_key.public_key():
        raise CredentialsInvalid(f"{credentials.key_path} is not the key of {path}")
    try:
        certificate.verify_directly_issued_by(credentials.wwdr)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CredentialsInvalid(f"{path} was not issued by {wwdr_path} (Apple's WWDR G4 is needed)") from exc
    pass_type = _attribute(certificate.subject, NameOID.USER_ID)
    if pass_type is not None and pass_type != settings.pass_type_id:
        raise CredentialsInvalid(
            f"{path} is for {pass_type}, but POINTCARD_APPLE__PASS_TYPE_ID is {settings.pass_type_id}"
        )
    team = _attribute(certificate.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if team is not None and team != settings.team_id:
        raise CredentialsInvalid(f"{path} belongs to team {team}, but POINTCARD_APPLE__TEAM_ID is {settings.team_id}")
    if credentials.not_after < datetime.now(UTC):
        raise CredentialsInvalid(
            f"{path} expired on {credentials.not_after:%Y-%m-%d}; renew it in the developer portal"
        )


def _load(settings: AppleWalletSettings) -> Credentials:
    directory = settings.certs_dir
    password = settings.pass_key_password.get_secret_value().encode() if settings.pass_key_password else None
    wwdr = _load_certificate(directory / WWDR_CERTIFICATE)
    credentials = Credentials(
        certificate=_load_certificate(directory / PASS_CERTIFICATE),
        private_key=_load_key(directory / PASS_KEY, password),
        wwdr=wwdr,
        certificate_path=directory / PASS_CERTIFICATE,
        key_path=directory / PASS_KEY,
        is_development=_attribute(wwdr.subject, NameOID.ORGANIZATION_NAME) != "Apple Inc.",
    )
    _check(settings, credentials, directory / WWDR_CERTIFICATE)
    return credentials


_cache: dict[tuple, Credentials] = {}
_cache_lock = threading.Lock()


def _cache_key(settings: AppleWalletSettings) -> tuple:
    stamps = []
    for name in (PASS_CERTIFICATE, PASS_KEY, WWDR_CERTIFICATE):
        path = settings.certs_dir / name
        stamps.append(path.stat().st_mtime_ns if path.exists() else None)
    secret = settings.pass_key_password.get_secret_value() if settings.pass_key_password else None
    return (settings.certs_dir.resolve(), tuple(stamps), secret, settings.pass_type_id, settings.team_id)


def load_credentials(settings: AppleWalletSettings) -> Credentials:
    """The signing credentials, parsed once per process (again only when the files change)."""
    key = _cache_key(settings)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    credentials = _load(settings)
    with _cache_lock:
        _cache[key] = credentials
    return credentials


def sign_manifest(manifest: bytes, credentials: Credentials) -> bytes:
    """Detached PKCS#7 over the manifest's exact bytes (Binary: no MIME newline rewriting).

    The authenticated attributes cryptography adds (content type, signing time, message
    digest) are what Wallet expects; the WWDR intermediate rides along so the device can
    build the chain to Apple's root.
    """
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest)
        .add_signer(credentials.certificate, credentials.private_key, hashes.SHA256())
        .add_certificate(credentials.wwdr)
        .sign(serialization.Encoding.DER, _SIGN_OPTIONS)
    )
