"""Messaging settings: environment variables POINTCARD_MESSAGING__<FIELD>.

Dicts and nested models are given as JSON, for example
POINTCARD_MESSAGING__QUIET_HOURS_BY_REGION='{"FR": {"start": "10:00", "end": "20:00", "days": [1,2,3,4,5,6]}}'.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

# Where the browsers' push services live; a subscription naming any other host is refused,
# so a customer cannot make the worker POST to an address of their choosing.
KNOWN_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "push.services.mozilla.com",
    "web.push.apple.com",
    "notify.windows.com",
)


class QuietHours(BaseModel):
    """When a marketing message may reach someone, in their own local time."""

    start: time = time(8, 0)
    end: time = time(21, 0)
    # ISO weekdays (1 = Monday) on which messages may go; None: every day.
    days: frozenset[int] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> QuietHours:
        if self.start >= self.end:
            raise ValueError("the allowed window must start before it ends, within one day")
        if self.days is not None and not (self.days and self.days <= set(range(1, 8))):
            raise ValueError("days are ISO weekdays, 1 (Monday) to 7 (Sunday), at least one")
        return self

    def tightened_by(self, other: QuietHours | None) -> QuietHours:
        """A regional rule can only narrow the default, never widen it."""
        if other is None:
            return self
        days = self.days if other.days is None else (other.days if self.days is None else self.days & other.days)
        return QuietHours(start=max(self.start, other.start), end=min(self.end, other.end), days=days)


class FrequencyCap(BaseModel):
    count: int = Field(ge=0)
    hours: int = Field(ge=1)


class MessagingSettings(BaseModel):
    """Outbox worker, consent rules and the push, SMS and voice providers."""

    # --- the worker ---
    batch_size: int = Field(default=50, ge=1, le=1000)
    concurrency: int = Field(default=8, ge=1, le=64)
    lease_seconds: float = Field(default=120, gt=0)
    # The longest one send may take; a send starts only with this much lease left, so a lease
    # never runs out while its worker is still talking to the provider.
    send_timeout_seconds: float = Field(default=15, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=2, gt=0)
    retry_max_seconds: float = Field(default=3600, gt=0)
    idle_seconds: float = Field(default=1.0, gt=0)

    # --- rules for marketing messages ---
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    # Keyed by the ISO region of the customer's phone number ("FR", "US"...).
    quiet_hours_by_region: dict[str, QuietHours] = Field(default_factory=dict)
    frequency_caps: dict[str, FrequencyCap] = Field(
        default_factory=lambda: {
            "sms": FrequencyCap(count=4, hours=168),
            "push": FrequencyCap(count=7, hours=168),
            "voice": FrequencyCap(count=1, hours=168),
        }
    )
    total_cap: FrequencyCap | None = Field(default_factory=lambda: FrequencyCap(count=10, hours=168))

    # --- web push ---
    push_backend: Literal["auto", "webpush", "console"] = "auto"
    # The VAPID private key (PEM), else read from the file `flask messaging vapid-keys` writes.
    vapid_private_key: SecretStr | None = None
    vapid_private_key_file: Path = Path("instance/vapid_private.pem")
    # A real mailto: or https: contact for push services; required in production.
    vapid_subject: str | None = None
    vapid_expiry_seconds: int = Field(default=12 * 3600, ge=60, le=24 * 3600)
    push_ttl_seconds: int = Field(default=24 * 3600, ge=0, le=28 * 24 * 3600)
    push_timeout_seconds: float = Field(default=10, gt=0)
    push_urgency: Literal["very-low", "low", "normal", "high"] = "normal"
    push_allowed_hosts: list[str] = Field(default_factory=lambda: list(KNOWN_PUSH_HOSTS))
    # Only for tests and local experiments: plain-http push endpoints.
    push_allow_http: bool = False

    # --- Twilio: SMS and voice ---
    sms_backend: Literal["auto", "twilio", "console"] = "auto"
    voice_backend: Literal["auto", "twilio", "console"] = "auto"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_voice_from: str | None = None
    # https://api.twilio.com, or a local test server.
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_timeout_seconds: float = Field(default=10, gt=0)
    # The public URL Twilio calls back (behind a proxy it differs from what the app sees);
    # None: the app's public_base_url.
    webhook_base_url: str | None = None
    sms_validity_seconds: int = Field(default=3600, ge=1, le=36000)
    sms_max_segments: int = Field(default=3, ge=1, le=10)
    sms_opt_out_footer: str = "Reply STOP to opt out."
    sms_help_text: str = "Msg&data rates may apply. Reply STOP to opt out, START to opt back in."
    voice_machine_detection_timeout: int = Field(default=30, ge=3, le=59)
    voice_ring_timeout: int = Field(default=25, ge=5, le=600)
    # Who to call to stop voice messages; None: the number the calls come from.
    voice_opt_out_number: str | None = None
    voice_language: str = "en-US"

    @model_validator(mode="after")
    def _regional_rules_leave_a_window(self) -> MessagingSettings:
        for region, rule in self.quiet_hours_by_region.items():
            try:
                self.quiet_hours.tightened_by(rule)
            except ValueError as exc:
                raise ValueError(f"quiet hours for {region} leave no time to send: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _sends_end_inside_their_lease(self) -> MessagingSettings:
        # The outbox's no-double-send argument rests on these: see app/messaging/outbox.py.
        if self.send_timeout_seconds >= self.lease_seconds:
            raise ValueError("send_timeout_seconds must be shorter than lease_seconds")
        if max(self.push_timeout_seconds, self.twilio_timeout_seconds) > self.send_timeout_seconds:
            raise ValueError("provider timeouts must not exceed send_timeout_seconds")
        return self
