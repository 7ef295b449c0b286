"""Throwaway Apple Wallet credentials for local runs and tests (`flask wallet dev-certs`).

A development root CA issues a "WWDR G4"-like intermediate, which issues a Pass Type ID
certificate shaped like Apple's (UID = pass type id, OU = team id), plus an APNs auth key
(.p8, EC P-256). Passes signed with them verify against dev_root_ca.pem with openssl, but
Wallet on a real iPhone refuses them: the service warns at start when it uses them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.wallet.apple.signing import APNS_KEY, APNS_KEY_INFO, PASS_CERTIFICATE, PASS_KEY, WWDR_CERTIFICATE

ROOT_CA = "dev_root_ca.pem"
DEV_ORGANIZATION = "Pointcard Development (not Apple)"
DEV_APNS_KEY_ID = "DEVKEY0001"
_VALIDITY = timedelta(days=5 * 365)


def _name(*attributes: tuple) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _certificate(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    public_key,
    signing_key,
    ca: bool,
    path_length: int | None = None,
    client_auth: bool = False,
) -> x509.Certificate:
    now = datetime.now(UTC) - timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if client_auth:  # Apple's Pass Type ID certificates double as APNs client certificates
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _ours(path: Path) -> bool:
    """Whether the certificate there was made by this module (anything else may be real)."""
    try:
        issuer = x509.load_pem_x509_certificate(path.read_bytes()).issuer
    except ValueError:
        return False
    return any(a.value == DEV_ORGANIZATION for a in issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _private(key, password: str | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _write(directory: Path, name: str, data: bytes, *, secret: bool = False) -> None:
    path = directory / name
    path.write_bytes(data)
    if secret:
        path.chmod(0o600)


def _chain(apple) -> tuple[x509.Certificate, x509.Certificate, x509.Certificate, rsa.RSAPrivateKey]:
    """(root, intermediate, pass certificate, pass key): the shape of Apple's real chain."""
    root_key, wwdr_key, pass_key = _rsa(), _rsa(), _rsa()
    root_name = _name(
        (NameOID.COMMON_NAME, "Pointcard Development Root CA"),
        (NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        (NameOID.COUNTRY_NAME, "US"),
    )
    wwdr_name = _name(
        (NameOID.COMMON_NAME, "Pointcard Development WWDR Certification Authority"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
        (NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        (NameOID.COUNTRY_NAME, "US"),
    )
    pass_name = _name(
        (NameOID.USER_ID, apple.pass_type_id),
        (NameOID.COMMON_NAME, f"Pass Type ID: {apple.pass_type_id}"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, apple.team_id),
        (NameOID.ORGANIZATION_NAME, apple.organization_name),
        (NameOID.COUNTRY_NAME, "US"),
    )
    root = _certificate(
        subject=root_name,
        issuer=root_name,
        public_key=root_key.public_key(),
        signing_key=root_key,
        ca=True,
        path_length=1,
    )
    wwdr = _certificate(
        subject=wwdr_name,
        issuer=root_name,
        public_key=wwdr_key.public_key(),
        signing_key=root_key,
        ca=True,
        path_length=0,
    )
    certificate = _certificate(
        subject=pass_name,
        issuer=wwdr_name,
        public_key=pass_key.public_key(),
        signing_key=wwdr_key,
        ca=False,
        client_auth=True,
    )
    return root, wwdr, certificate, pass_key


def create_dev_credentials(settings, *, force: bool = False) -> str:
    """Write development credentials into settings.apple.certs_dir; a no-op when they exist."""
    apple = settings.apple
    directory: Path = apple.certs_dir
    existing = directory / PASS_CERTIFICATE
    if existing.exists() and not _ours(existing):
        return f"{directory} holds real credentials; left as they are (dev-certs never replaces them)"
    if existing.exists() and not force:
        return f"credentials already in {directory} (--force replaces them)"
    directory.mkdir(parents=True, exist_ok=True)
    root, wwdr, certificate, pass_key = _chain(apple)
    password = apple.pass_key_password.get_secret_value() if apple.pass_key_password else None
    _write(directory, ROOT_CA, _pem(root))
    _write(directory, WWDR_CERTIFICATE, _pem(wwdr))
    _write(directory, PASS_CERTIFICATE, _pem(certificate))
    _write(directory, PASS_KEY, _private(pass_key, password), secret=True)
    _write(directory, APNS_KEY, _private(ec.generate_private_key(ec.SECP256R1())), secret=True)
    _write(directory, APNS_KEY_INFO, json.dumps({"key_id": DEV_APNS_KEY_ID, "team_id": apple.team_id}).encode())
    return (
        f"development credentials for {apple.pass_type_id} (team {apple.team_id}) written to {directory}; "
        "passes signed with them do not open in Wallet on a real device"
    )
