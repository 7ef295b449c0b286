"""Outside services that deliver messages, each behind one small Protocol."""

from __future__ import annotations

import logging
from typing import Protocol

from app.messaging.models import Message

log = logging.getLogger("pointcard.messages")


class Sender(Protocol):
    def send(self, message: Message) -> str:
        """Deliver the message; return the provider's id for it. Raise to retry."""


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
