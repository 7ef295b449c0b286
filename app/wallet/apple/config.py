from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, SecretStr


class AppleWalletSettings(BaseModel):
    """Apple Wallet settings: environment variables POINTCARD_APPLE__<FIELD>."""

    pass_type_id: str = "pass.dev.pointcard.loyalty"
    team_id: str = "DEVTEAM000"
    organization_name: str = "Pointcard"
    certs_dir: Path = Path("certs/apple")
    pass_key_password: SecretStr | None = None
    apns_key_id: str | None = None
    apns_host: str = "https://api.push.apple.com"
    # Extra CA bundle to trust for APNs (a local test server's CA); None uses the system's.
    apns_ca_file: Path | None = None
