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

    # The local time from which marketing messages may go.
    start: time = time(8, 0)
    # The local time until which they may go, the same day (the window never runs past midnight).
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
    # Due rows one worker claims per transaction.
    batch_size: int = Field(default=50, ge=1, le=1000)
    # Sends one worker keeps in flight; also the most a killed worker can leave sent but unrecorded.
    concurrency: int = Field(default=8, ge=1, le=64)
    # How long a claim holds its rows; a dead worker's rows are claimed again when it runs out.
    lease_seconds: float = Field(default=120, gt=0)
    # The longest one send may take; a send starts only with this much lease left, so a lease
    # never runs out while its worker is still talking to the provider.
    send_timeout_seconds: float = Field(default=15, gt=0)
    # Attempts before a message fails for good (webhooks keep their own, longer schedule).
    max_attempts: int = Field(default=5, ge=1)
    # The first retry waits about this long and each further one twice as long (jittered by
    # +-50 %), never sooner than a provider's Retry-After.
    retry_base_seconds: float = Field(default=2, gt=0)
    # The longest wait between two attempts, before the jitter.
    retry_max_seconds: float = Field(default=3600, gt=0)
    # How long an idle worker sleeps before it looks for due rows again.
    idle_seconds: float = Field(default=1.0, gt=0)

    # --- rules for marketing messages ---
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    # Narrower windows for some countries (a regional rule only narrows the default).
    # Keyed by the ISO region of the customer's phone number ("FR", "US"...).
    quiet_hours_by_region: dict[str, QuietHours] = Field(default_factory=dict)
    # Per marketing channel: at most `count` messages to one customer within `hours`; past it a
    # message is suppressed with the reason.
    frequency_caps: dict[str, FrequencyCap] = Field(
        default_factory=lambda: {
            "sms": FrequencyCap(count=4, hours=168),
            "push": FrequencyCap(count=7, hours=168),
            "voice": FrequencyCap(count=1, hours=168),
        }
    )
    # The same over every marketing channel together; null: no overall cap.
    total_cap: FrequencyCap | None = Field(default_factory=lambda: FrequencyCap(count=10, hours=168))

    # --- web push ---
    # auto: Web Push when a VAPID key is there, else log; webpush: always (no key: the worker
    # refuses to start); console: log only.
    push_backend: Literal["auto", "webpush", "console"] = "auto"
    # The VAPID private key (PEM), else read from the file `flask messaging vapid-keys` writes.
    vapid_private_key: SecretStr | None = None
    # Where `flask messaging vapid-keys` writes the key, and where it is read from when
    # VAPID_PRIVATE_KEY is unset.
    vapid_private_key_file: Path = Path("instance/vapid_private.pem")
    # A real mailto: or https: contact for push services; required in production.
    vapid_subject: str | None = None
    # Lifetime of the VAPID JWT each push carries (push services take at most 24 h).
    vapid_expiry_seconds: int = Field(default=12 * 3600, ge=60, le=24 * 3600)
    # How long a push service keeps a push for a browser that is offline (a message may set its own).
    push_ttl_seconds: int = Field(default=24 * 3600, ge=0, le=28 * 24 * 3600)
    # Timeout of one request to a push service (at most send_timeout_seconds).
    push_timeout_seconds: float = Field(default=10, gt=0)
    # The Urgency header (RFC 8030) of pushes that name none.
    push_urgency: Literal["very-low", "low", "normal", "high"] = "normal"
    # Push services a subscription may point at (a host or its subdomains); others are refused.
    push_allowed_hosts: list[str] = Field(default_factory=lambda: list(KNOWN_PUSH_HOSTS))
    # Only for tests and local experiments: plain-http push endpoints.
    push_allow_http: bool = False

    # --- Twilio: SMS and voice ---
    # auto: Twilio when the account SID and auth token are set, else log; twilio: always;
    # console: log only.
    sms_backend: Literal["auto", "twilio", "console"] = "auto"
    # The same choice for voice calls.
    voice_backend: Literal["auto", "twilio", "console"] = "auto"
    # The Twilio account (AC...) that sends the texts and places the calls.
    twilio_account_sid: str | None = None
    # Its auth token: authenticates the REST calls and checks X-Twilio-Signature on Twilio's webhooks.
    twilio_auth_token: SecretStr | None = None
    # The Messaging Service (MG...) texts go out through; SMS needs it.
    twilio_messaging_service_sid: str | None = None
    # The number (E.164) calls are placed from; voice needs it.
    twilio_voice_from: str | None = None
    # Where the Twilio REST calls go:
    # https://api.twilio.com, or a local test server.
    twilio_api_base_url: str = "https://api.twilio.com"
    # Timeout of one Twilio REST call (at most send_timeout_seconds).
    twilio_timeout_seconds: float = Field(default=10, gt=0)
    # The public URL Twilio calls back (behind a proxy it differs from what the app sees);
    # None: the app's public_base_url.
    webhook_base_url: str | None = None
    # How long Twilio keeps trying to deliver a text before dropping it (a message may set its own).
    sms_validity_seconds: int = Field(default=3600, ge=1, le=36000)
    # The longest text accepted, in segments (GSM-7 or UCS-2); a longer one is refused when queued.
    sms_max_segments: int = Field(default=3, ge=1, le=10)
    # Added to marketing texts that do not mention STOP already; empty: nothing added.
    sms_opt_out_footer: str = "Reply STOP to opt out."
    # The answer to HELP, after the program's name.
    sms_help_text: str = "Msg&data rates may apply. Reply STOP to opt out, START to opt back in."
    # Seconds Twilio's answering-machine detection may listen; the greeting holds the line as long.
    voice_machine_detection_timeout: int = Field(default=30, ge=3, le=59)
    # Seconds a call rings before it counts as not answered.
    voice_ring_timeout: int = Field(default=25, ge=5, le=600)
    # Who to call to stop voice messages; None: the number the calls come from.
    voice_opt_out_number: str | None = None
    # The language the calls' text is spoken in (Twilio <Say>).
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
