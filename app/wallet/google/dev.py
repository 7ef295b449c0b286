"""`flask wallet dev-certs`: a throwaway service-account key and issuer id for local runs.

Save links signed with it verify against certs/google/service-account.pub.pem, so they can
be checked locally; Google itself refuses them, and the REST calls are only logged.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.wallet.google.credentials import DEV_MARKER

DEV_PROJECT = "pointcard-dev"


def _write_private(path: Path, text: str) -> None:
    path.write_text("")
    os.chmod(path, 0o600)  # before the secret goes in
    path.write_text(text)


def _service_account(key: rsa.RSAPrivateKey) -> dict:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": DEV_PROJECT,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": f"pointcard-wallet@{DEV_PROJECT}.iam.gserviceaccount.com",
        "client_id": str(10**20 + secrets.randbelow(9 * 10**20)),
        "token_uri": "https://oauth2.googleapis.com/token",
        DEV_MARKER: True,
    }


def create_dev_credentials(settings, force: bool = False) -> str:
    google = settings.google
    path = google.service_account_file
    if path.exists():
        if not json.loads(path.read_text()).get(DEV_MARKER):
            return f"kept the real service account in {path} (dev-certs never replaces it)"
        if not force:
            return f"kept the development service account in {path} (--force makes a new one)"
    google.certs_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = _service_account(key)
    _write_private(path, json.dumps(account, indent=2))
    public = google.certs_dir / "service-account.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    issuer = _dev_issuer_id(google, force=force)
    return (
        f"wrote a throwaway service account ({account['client_email']}) to {path}, issuer id {issuer}; "
        f"save links verify with {public}, and Google refuses them"
    )


def _dev_issuer_id(google, *, force: bool) -> str:
    if google.issuer_id:
        return google.issuer_id
    path = google.certs_dir / "issuer_id"
    if path.exists() and not force:
        return path.read_text().strip()
    # Google's issuer ids are 19 digits starting 3388000000; a random tail marks it as ours.
    issuer = "3388000000" + str(secrets.randbelow(10**9)).zfill(9)
    path.write_text(issuer + "\n")
    return issuer
