"""One application's Google Wallet: its settings, credentials, REST client and callback keys, built
once by the wiring (`Services.google_wallet`) and shared by its views and its sender."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING

from app.wallet.google.callbacks import RootKeys
from app.wallet.google.config import GoogleWalletSettings
from app.wallet.google.credentials import NotConfigured, ServiceAccount, load_issuer_id, load_service_account
from app.wallet.google.providers import ConsoleWalletApi, RestWalletApi, WalletApi

if TYPE_CHECKING:  # app.config imports this package's settings: no import cycle at run time
    from app.config import Settings

log = logging.getLogger("pointcard.google_wallet")


class GoogleWallet:
    def __init__(self, settings: Settings) -> None:
        self.app_settings = settings

    @property
    def settings(self) -> GoogleWalletSettings:
        return self.app_settings.google

    @property
    def base_url(self) -> str:
        return self.app_settings.public_base_url.rstrip("/")

    @cached_property
    def account(self) -> ServiceAccount:
        return load_service_account(self.settings)

    @cached_property
    def issuer_id(self) -> str:
        return load_issuer_id(self.settings)

    @cached_property
    def api(self) -> WalletApi:
        if self._uses_console():
            log.warning("Google Wallet: no real service account, so REST calls are only logged")
            return ConsoleWalletApi()
        return RestWalletApi(
            base_url=self.settings.api_base_url, account=self.account, timeout=self.settings.http_timeout_seconds
        )

    @cached_property
    def root_keys(self) -> RootKeys:
        return RootKeys(
            url=self.settings.callback_keys_url,
            cache_seconds=self.settings.callback_keys_cache_seconds,
            timeout=self.settings.http_timeout_seconds,
        )

    def _uses_console(self) -> bool:
        if self.settings.sender != "auto":
            return self.settings.sender == "console"
        try:
            return self.account.is_dev
        except NotConfigured:
            return True

    @property
    def origins(self) -> list[str]:
        return self.settings.origins or [self.base_url]

    @property
    def callback_url(self) -> str:
        return self.settings.callback_url or f"{self.base_url}/wallet/google/callback"

    def logo_url(self, program_slug: str) -> str:
        return self.settings.program_logo_url or f"{self.base_url}/wallet/google/assets/{program_slug}/logo.png"

    def card_url(self, access_token: str) -> str:
        # The card page, as in app.loyalty.api.card_links (which needs a request to run).
        return f"{self.base_url}/card/{access_token}"
