"""Abuse limits that need to know who is calling: per-caller API limits and login lockout.

Flask-Limiter's route decorators limit anonymous endpoints per IP before the view runs. These
two need the verified token or the login's e-mail, so they count here, in the same storage
(Redis when REDIS_URL is set, else this process's memory) through the `limits` library, with
objects the app owns rather than the process-wide Flask-Limiter singleton.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from flask import Flask, request
from limits import RateLimitItem, parse, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter, SlidingWindowCounterRateLimiter

from app.config import Settings
from app.errors import TooManyRequests
from app.roles import Principal, Role

log = logging.getLogger(__name__)


class CallerRateLimited(TooManyRequests):
    slug, title = "rate-limited", "Too many requests"


class LoginLocked(TooManyRequests):
    slug, title = "login-locked", "Too many failed logins"


class AbuseGuard:
    def __init__(self, settings: Settings, storage_uri: str) -> None:
        # The Redis key prefix keeps deployments (and test runs) sharing one Redis apart.
        options = {"key_prefix": settings.rate_limit_key_prefix} if storage_uri.startswith("redis") else {}
        self.settings = settings
        self.storage = storage_from_string(storage_uri, **options)
        # Busy accounts: two counters per window, whatever the rate. Lockouts: exact timestamps.
        self.counter = SlidingWindowCounterRateLimiter(self.storage)
        self.window = MovingWindowRateLimiter(self.storage)
        self._staff_limits = parse_many(settings.staff_rate_limit)
        self._customer_limits = parse_many(settings.customer_rate_limit)
        self._failures = parse(f"{settings.login_lockout_attempts} per {settings.login_lockout_window_minutes} minutes")
        self._lock = parse(f"1 per {settings.login_lockout_minutes} minutes")

    # --- per caller ---

    def check_caller(self, principal: Principal) -> None:
        """Count one API call against the caller's own limit (staff user or customer)."""
        if not self.settings.rate_limits_enabled:
            return
        limits = self._customer_limits if principal.role is Role.customer else self._staff_limits
        for item in limits:
            if not self.counter.hit(item, "caller", principal.subject):
                wait = _seconds_until_free(self.counter, item, "caller", principal.subject)
                raise CallerRateLimited(
                    f"This account made more than {item} requests; slow down.",
                    headers={"Retry-After": str(wait)},
                )

    # --- login lockout ---

    def refuse_locked_login(self, email: str) -> None:
        """During a lockout every attempt gets this answer, right password or not, known e-mail or not."""
        if self.settings.login_lockout_attempts <= 0:
            return
        key = _email_key(email)
        if not self.window.test(self._lock, "login-lock", key):
            minutes = self.settings.login_lockout_minutes
            raise LoginLocked(
                f"Too many failed logins for this e-mail: logins are refused for {minutes} minutes.",
                headers={"Retry-After": str(_seconds_until_free(self.window, self._lock, "login-lock", key))},
            )

    def login_failed(self, email: str) -> None:
        if self.settings.login_lockout_attempts <= 0:
            return
        key = _email_key(email)
        self.window.hit(self._failures, "login-fail", key)
        if not self.window.test(self._failures, "login-fail", key):
            self.window.hit(self._lock, "login-lock", key)
            self.window.clear(self._failures, "login-fail", key)  # after the lockout: a fresh allowance
            log.warning(
                "login locked for %s minutes after %s failures (e-mail key %s)",
                self.settings.login_lockout_minutes,
                self.settings.login_lockout_attempts,
                key[:12],
            )

    def login_succeeded(self, email: str) -> None:
        if self.settings.login_lockout_attempts > 0:
            self.window.clear(self._failures, "login-fail", _email_key(email))


def _seconds_until_free(strategy: RateLimiter, item: RateLimitItem, *identifiers: str) -> int:
    reset = strategy.get_window_stats(item, *identifiers).reset_time
    return max(1, math.ceil(reset - time.time()))


def _email_key(email: str) -> str:
    # Hashed: the limit storage never holds the addresses people typed.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


# --- security headers --------------------------------------------------------------------------

HSTS = "max-age=31536000"  # a year; not includeSubDomains, which would bind hosts this app does not own


def register_security_headers(app: Flask) -> None:
    """HSTS on every response that came over HTTPS (behind ProxyFix, as the proxy saw it), and
    the no-sniff / no-referrer pair on every response, API included; pages add their CSP."""

    @app.after_request
    def _security_headers(response):
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response
