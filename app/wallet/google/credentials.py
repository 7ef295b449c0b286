"""The service account that signs save links and calls the REST API, and the issuer id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from app.wallet.google.config import GoogleWalletSettings

# Written into the key file by `flask wallet dev-certs`: Google knows nothing of that key.
DEV_MARKER = "pointcard_dev"


class NotConfigured(Exception):
    """No service account or issuer id: Google Wallet cannot be used."""


@dataclass(frozen=True)
class ServiceAccount:
    info: dict

    @property
    def email(self) -> str:
        return self.info["client_email"]

    @property
    def key_id(self) -> str | None:
        return self.info.get("private_key_id")

    @property
    def is_dev(self) -> bool:
        return bool(self.info.get(DEV_MARKER))

    @cached_property
    def private_key(self) -> RSAPrivateKey:
        # Parsed once: loading the PEM costs more than signing a save link.
        key = load_pem_private_key(self.info["private_key"].encode(), password=None)
        if not isinstance(key, RSAPrivateKey):
            raise NotConfigured("the service account's private key is not an RSA key (Google issues RSA keys)")
        return key


def load_service_account(settings: GoogleWalletSettings) -> ServiceAccount:
    path = settings.service_account_file
    if not path.exists():
        raise NotConfigured(f"no service account key at {path} (run 'flask wallet dev-certs' for a local one)")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise NotConfigured(f"cannot read {path}: {exc}") from exc
    missing = {"client_email", "private_key", "token_uri"} - info.keys()
    if missing:
        raise NotConfigured(f"{path} lacks {', '.join(sorted(missing))}; is it a service-account key?")
    return ServiceAccount(info)


def load_issuer_id(settings: GoogleWalletSettings) -> str:
    if settings.issuer_id:
        return settings.issuer_id.strip()
    path = settings.certs_dir / "issuer_id"
    if not path.exists():
        raise NotConfigured(
            f"no issuer id: set POINTCARD_GOOGLE__ISSUER_ID, write it to {path}, "
            "or run 'flask wallet dev-certs' for a local one"
        )
    return path.read_text().strip()
