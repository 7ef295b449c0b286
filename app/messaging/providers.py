"""Outside services that deliver messages, each behind one small Protocol.

A sender raises `RetryLater` for a passing failure (429, 5xx, timeouts: the outbox retries with
backoff, honouring `retry_after`) and `Undeliverable` when retrying cannot help (the outbox
marks the message failed at once). Any other exception counts as passing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from flask import Flask

from app.messaging.models import Message

log = logging.getLogger("pointcard.messages")


class RetryLater(Exception):
    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Undeliverable(Exception):
    """The provider refused the message for good (bad address, unregistered device...)."""


class Sender(Protocol):
    def send(self, message: Message) -> str:
        """Deliver the message; return the provider's id for it."""


class ConsoleSender:
    """For `make run`: prints what would be sent."""

    def send(self, message: Message) -> str:
        log.info("[%s] to customer %s: %s", message.channel, message.customer_id, message.content)
        return f"console-{message.id}"


class RecordingSender:
    """For tests: keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, dict]] = []

    def send(self, message: Message) -> str:
        self.sent.append((message.id, message.channel, dict(message.content)))
        return f"test-{message.id}"


# channel name -> factory(app) -> Sender. Domains register their channels at import time.
_SENDER_FACTORIES: dict[str, Callable[[Flask], Sender]] = {}


def register_channel(channel: str, factory: Callable[[Flask], Sender]) -> None:
    _SENDER_FACTORIES[channel] = factory


def build_senders(app: Flask) -> dict[str, Sender]:
    """Every channel's sender for this app; channels nobody registered print to the console."""
    console = ConsoleSender()
    senders: dict[str, Sender] = {channel: console for channel in ("push", "sms", "voice", "email")}
    senders.update({channel: factory(app) for channel, factory in _SENDER_FACTORIES.items()})
    return senders
