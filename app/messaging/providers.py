"""Outside services that deliver messages, each behind one small Protocol.

A sender raises `RetryLater` for a passing failure (429, 5xx, timeouts: the outbox retries with
backoff, honouring `retry_after`), `Undeliverable` when retrying cannot help (the outbox marks
the message failed at once) and `OptedOut` when the provider says the person opted out (the
outbox revokes their consent and suppresses the message). Any other exception counts as passing.

Channels, their policies and their senders are listed in `app/wiring.py` (see
`app/messaging/channels.py`).
"""

from __future__ import annotations

import email.utils
import logging
from datetime import datetime
from typing import Protocol

from app.db import utcnow
from app.messaging.models import Message

log = logging.getLogger("pointcard.messages")


class RetryLater(Exception):
    def __init__(self, reason: str, *, retry_after: float | None = None, details: dict | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        # Merged into the message's details: progress to keep across the retry.
        self.details = details or {}


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or utcnow())).total_seconds())


class Undeliverable(Exception):
    """The provider refused the message for good (bad address, unregistered device...)."""


class OptedOut(Undeliverable):
    """The provider says the recipient opted out (Twilio 21610): their consent is revoked."""


class Sender(Protocol):
    """Delivers one channel's messages. A sender that counts its own tries (raising Undeliverable
    when they run out: webhooks retry for hours) sets `counts_own_tries = True`, so the outbox's
    max_attempts does not cut them short."""

    def send(self, message: Message) -> str:
        """Deliver the message; return the provider's id for it."""


class ConsoleSender:
    """For `make run`: prints what would be sent."""

    def send(self, message: Message) -> str:
        log.info("[%s] to customer %s: %s", message.channel, message.customer_id, message.content)
        return f"console-{message.id}"


def console_sender(_services: object) -> ConsoleSender:
    """A channel with no provider yet prints what it would send."""
    return ConsoleSender()


class RecordingSender:
    """For tests: keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, dict]] = []

    def send(self, message: Message) -> str:
        self.sent.append((message.id, message.channel, dict(message.content)))
        return f"test-{message.id}"
