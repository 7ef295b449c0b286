from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

# The class and object designs ship with the code, so they are found beside it, not the cwd.
DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[3] / "wallet_templates"


class GoogleWalletSettings(BaseModel):
    """Google Wallet settings: environment variables POINTCARD_GOOGLE__<FIELD>."""

    # Issued by the Google Pay & Wallet Console; when unset, read from certs_dir/issuer_id.
    issuer_id: str | None = None
    # Holds service-account.json (the key Google issued for the service account); see
    # certs.example/README.md. `flask wallet dev-certs` writes a throwaway one.
    certs_dir: Path = Path("certs/google")
    # The walletobjects REST API, or a local test server.
    api_base_url: str = "https://walletobjects.googleapis.com/walletobjects/v1"
    # A save link is this followed by the signed JWT.
    save_url_base: str = "https://pay.google.com/gp/v/save/"
    # auto: call Google unless the service account is the throwaway dev one (Google would
    # refuse it), then log instead; google: always call; console: always log.
    sender: Literal["auto", "google", "console"] = "auto"
    # Timeout of one call to Google (the REST API, the callback keys).
    http_timeout_seconds: float = 10.0
    # Shown at the top of the card; the program's name when unset.
    issuer_name: str | None = None
    # Pages allowed to show the save button; the service's own address when empty.
    origins: list[str] = []
    # Where Google posts save/delete callbacks; <public_base_url>/wallet/google/callback when unset.
    callback_url: str | None = None
    # A public https image; the logo served from the program's template folder when unset.
    program_logo_url: str | None = None
    # Google's advice: longer save links fail in some browsers, so past this the class and
    # object go in through the REST API first and the link carries only the object's id.
    max_jwt_chars: int = 1800
    # Google sends at most 3 notifying updates/messages per pass per 24 h and fails the rest.
    notifications_per_day: int = 3
    # Google's docs name both sender ids (GooglePayPasses in older pages, GoogleWalletPasses
    # in newer ones); a callback signed for any of them is accepted.
    callback_sender_ids: list[str] = ["GooglePayPasses", "GoogleWalletPasses"]
    # Where Google publishes the root keys its save/delete callbacks are signed under.
    callback_keys_url: str = "https://pay.google.com/gp/m/issuer/keys"
    # How long fetched callback root keys are trusted when the answer names no max-age.
    callback_keys_cache_seconds: int = 3600
    # Designs: <templates_dir>/<program slug>/google/, else <templates_dir>/default/google/.
    templates_dir: Path = DEFAULT_TEMPLATES_DIR

    @property
    def service_account_file(self) -> Path:
        return self.certs_dir / "service-account.json"
