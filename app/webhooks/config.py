"""Webhook settings: environment variables POINTCARD_WEBHOOKS__<FIELD>.

Lists are given as JSON, for example POINTCARD_WEBHOOKS__RETRY_SECONDS='[60, 600, 3600]'.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class WebhooksSettings(BaseModel):
    """Environment variables POINTCARD_WEBHOOKS__<FIELD>."""

    # Waits before each retry (attempt 2, 3, ...), each spread by +-20 % so endpoints that
    # recover together are not hit together; a receiver's longer Retry-After wins. One attempt
    # more than there are waits: the default tries 8 times over about 13 hours.
    retry_seconds: list[float] = Field(
        default_factory=lambda: [30.0, 120.0, 600.0, 1800.0, 3600.0, 3 * 3600.0, 8 * 3600.0],
        min_length=0,
        max_length=20,
    )
    # Per attempt, connecting and reading included (also capped by the outbox's send_timeout_seconds).
    timeout_seconds: float = Field(default=10, gt=0, le=60)
    # How much of the receiver's answer is kept on the delivery, for staff to read.
    response_excerpt_chars: int = Field(default=1000, ge=0, le=10_000)
    # Refuse endpoints (at registration and again at every send, after DNS) whose addresses are
    # private, loopback, link-local or otherwise not public: the worker must not become a way
    # into the internal network. Tests and local receivers set this true.
    allow_private_addresses: bool = False
    # Plain http:// endpoints, only on a loopback host: for a receiver on the developer's machine.
    allow_http_localhost: bool = False
    # Extra CA bundle to trust for receivers (a local test receiver's CA); the system's otherwise.
    ca_file: Path | None = None
    # Delivery records (payload and last response) are deleted this long after they were created.
    retention_days: int = Field(default=30, ge=1)

    @property
    def max_attempts(self) -> int:
        return len(self.retry_seconds) + 1
