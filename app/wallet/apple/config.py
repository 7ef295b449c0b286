from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr

# The pass designs ship with the code, so they are found beside it, not relative to the cwd.
DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[3] / "wallet_templates"

APPLE_APNS_HOSTS = ("https://api.push.apple.com", "https://api.sandbox.push.apple.com")


class AppleWalletSettings(BaseModel):
    """Apple Wallet settings: environment variables POINTCARD_APPLE__<FIELD>."""

    # The Pass Type ID registered with Apple (pass.com.example.loyalty); also the APNs topic. The
    # default matches the certificates `flask wallet dev-certs` writes.
    pass_type_id: str = "pass.dev.pointcard.loyalty"
    # The 10-character Apple team id; the pass certificate's OU must be this.
    team_id: str = "DEVTEAM000"
    # The passes' organizationName when a design sets none.
    organization_name: str = "Pointcard"
    # Holds pass_certificate.pem, pass_key.pem, wwdr_g4.pem and (token auth) apns_key.p8;
    # see certs.example/README.md.
    certs_dir: Path = Path("certs/apple")
    # The password of pass_key.pem when it is encrypted.
    pass_key_password: SecretStr | None = None
    # The .p8 key's id; when unset, read from certs_dir/apns_key.json (written by dev-certs).
    apns_key_id: str | None = None
    # https://api.push.apple.com, https://api.sandbox.push.apple.com, or a local test server.
    apns_host: str = "https://api.push.apple.com"
    # Extra CA bundle to trust for APNs (a local test server's CA); None uses the system's.
    apns_ca_file: Path | None = None
    # auto: push for real unless signing with development certificates towards Apple's own
    # hosts (Apple would refuse the dev key), then log instead; apns: always push; console: log.
    apns_sender: Literal["auto", "apns", "console"] = "auto"
    # Timeout of one APNs request (connecting, sending and reading each).
    apns_timeout_seconds: float = 10.0
    # Pass designs: <templates_dir>/<program slug>/apple/, else <templates_dir>/default/apple/.
    templates_dir: Path = DEFAULT_TEMPLATES_DIR
