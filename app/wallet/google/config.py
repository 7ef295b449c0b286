from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel


class GoogleWalletSettings(BaseModel):
    """Google Wallet settings: environment variables POINTCARD_GOOGLE__<FIELD>."""

    issuer_id: str | None = None
    certs_dir: Path = Path("certs/google")
    api_base_url: str = "https://walletobjects.googleapis.com/walletobjects/v1"
    save_url_base: str = "https://pay.google.com/gp/v/save/"
    callback_sender_id: str = "GooglePayPasses"
    callback_keys_url: str = "https://pay.google.com/gp/m/issuer/keys"
