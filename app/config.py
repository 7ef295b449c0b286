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
    """The service's own settings, environment variables POINTCARD_<FIELD>; each package's settings
    nest below it as POINTCARD_<PACKAGE>__<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="POINTCARD_", env_nested_delimiter="__", extra="ignore")

    # development and test generate throwaway secrets into instance/; production refuses to start
    # without the real ones (secret key, contact-field keys, and the VAPID subject once push is on).
    env: Literal["development", "test", "production"] = "development"
    # DATABASE_URL and REDIS_URL are conventional names: read them without the prefix.
    database_url: str = Field(
        default=f"sqlite:///{INSTANCE_DIR / 'pointcard.db'}",
        validation_alias="DATABASE_URL",
        description="The SQLAlchemy URL of the database: a SQLite file in development, "
        "postgresql+psycopg://user:password@host/db in production.",
    )
    # Where the rate-limit counts live, shared by every web node (redis://host:6379/0); unset: each
    # process counts in its own memory.
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    # Signs the JWTs (HS256): 32 or more random characters. Unset in development: one is generated
    # into instance/secret_key.
    secret_key: SecretStr | None = None
    # The service's public address: links in enrolment answers and on the card page, the passes'
    # webServiceURL, Google's callbacks, Twilio's webhooks. https in production.
    public_base_url: str = "http://127.0.0.1:5000"
    # How many proxies in front of the app set X-Forwarded-For/-Proto/-Host (0: trust none).
    proxy_hops: int = Field(default=0, ge=0, le=5)

    # log2 of scrypt's N for staff passwords; production refuses less than 15 (tests use a cheap 10).
    password_hash_cost: int = Field(default=15, ge=10, le=20)

    # The `iss` claim written into every token and required of every token presented.
    jwt_issuer: str = "pointcard"
    # The `aud` claim, likewise: a token meant for another audience is refused.
    jwt_audience: str = "pointcard-api"
    # Lifetime of a staff token from POST /api/v1/auth/token.
    staff_token_minutes: int = 60
    # Lifetime of a customer token from POST /api/v1/auth/card.
    customer_token_minutes: int = 30

    # Velocity limits at the till; over them the request is refused and logged.
    # Purchases one card may make in an hour; the next one is a 429.
    max_purchases_per_card_per_hour: int = 10
    # Points one purchase may earn; a purchase worth more is a 422.
    max_points_per_transaction: int = 5000

    # Per client IP on the public endpoints (Flask-Limiter syntax).
    # Enrolments: POST /api/v1/enroll, and the sign-up form's POST /join in a bucket of its own.
    enroll_rate_limit: str = "10 per minute; 100 per hour"
    # Logins: POST /api/v1/auth/token and POST /api/v1/auth/card.
    login_rate_limit: str = "20 per minute"
    # Every other request without a valid bearer token, per client IP, across all routes.
    public_rate_limit: str = "300 per minute"
    # Requests with a valid token count against the caller instead of the IP.
    # A staff user's budget, whatever the IP (a store's tills behind one NAT do not share one).
    staff_rate_limit: str = "600 per minute"
    # A customer's budget, whatever the IP.
    customer_rate_limit: str = "120 per minute"
    # false turns every rate limit off, per IP and per account (benchmarks); the login lockout stays.
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
    # The window those failures are counted in.
    login_lockout_window_minutes: int = Field(default=15, ge=1)
    # How long every login for a locked e-mail is refused (429 login-locked).
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
