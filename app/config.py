"""Settings from the environment (12-factor), with safe defaults for development."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.audit.config import AuditSettings
from app.campaigns.config import CampaignSettings
from app.geo.config import GeoSettings
from app.messaging.config import MessagingSettings
from app.privacy.config import PrivacySettings
from app.wallet.apple.config import AppleWalletSettings
from app.wallet.google.config import GoogleWalletSettings
from app.webhooks.config import WebhooksSettings

INSTANCE_DIR = Path.cwd() / "instance"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POINTCARD_", env_nested_delimiter="__", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    # DATABASE_URL and REDIS_URL are conventional names: read them without the prefix.
    database_url: str = Field(
        default=f"sqlite:///{INSTANCE_DIR / 'pointcard.db'}",
        validation_alias="DATABASE_URL",
    )
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    secret_key: SecretStr | None = None
    public_base_url: str = "http://127.0.0.1:5000"
    # How many proxies in front of the app set X-Forwarded-For/-Proto/-Host (0: trust none).
    proxy_hops: int = Field(default=0, ge=0, le=5)

    # log2 of scrypt's N for staff passwords; production refuses less than 15 (tests use a cheap 10).
    password_hash_cost: int = Field(default=15, ge=10, le=20)

    jwt_issuer: str = "pointcard"
    jwt_audience: str = "pointcard-api"
    staff_token_minutes: int = 60
    customer_token_minutes: int = 30

    # Velocity limits at the till; over them the request is refused and logged.
    max_purchases_per_card_per_hour: int = 10
    max_points_per_transaction: int = 5000

    # Per client IP on the public endpoints (Flask-Limiter syntax).
    enroll_rate_limit: str = "10 per minute; 100 per hour"
    login_rate_limit: str = "20 per minute"
    # Every other request without a valid bearer token, per client IP, across all routes.
    public_rate_limit: str = "300 per minute"
    # Requests with a valid token count against the caller instead of the IP.
    staff_rate_limit: str = "600 per minute"
    customer_rate_limit: str = "120 per minute"
    rate_limits_enabled: bool = True
    # Endpoints (fnmatch patterns) outside the per-IP limit: probes and signed webhooks.
    rate_limit_exempt_endpoints: list[str] = Field(
        default_factory=lambda: ["healthz", "messaging.twilio_*", "google_wallet.callback"]
    )
    # Prefixes the limit keys in Redis, so deployments sharing one Redis stay apart.
    rate_limit_key_prefix: str = "pointcard"
    # A login e-mail that fails this many times within the window is refused for the lockout
    # (known e-mail or not, right password or not); 0 turns the lockout off.
    login_lockout_attempts: int = Field(default=5, ge=0)
    login_lockout_window_minutes: int = Field(default=15, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)

    apple: AppleWalletSettings = Field(default_factory=AppleWalletSettings)
    google: GoogleWalletSettings = Field(default_factory=GoogleWalletSettings)
    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    geo: GeoSettings = Field(default_factory=GeoSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)

    @model_validator(mode="after")
    def _require_secret_in_production(self) -> Settings:
        if self.env == "production" and self.secret_key is None:
            raise ValueError("POINTCARD_SECRET_KEY must be set in production")
        if self.env == "production" and self.password_hash_cost < 15:
            raise ValueError("POINTCARD_PASSWORD_HASH_COST below 15 is for tests, not production")
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("POINTCARD_SECRET_KEY must be at least 32 characters of random data")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def signing_secret(self) -> str:
        """The secret that signs JWTs: from the environment, else a dev secret kept in instance/."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = INSTANCE_DIR / "secret_key"
        if not path.exists():
            INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
