"""Outside services that deliver messages, each behind one small Protocol, and the channel registry.

A sender raises `RetryLater` for a passing failure (429, 5xx, timeouts: the outbox retries with
backoff, honouring `retry_after`), `Undeliverable` when retrying cannot help (the outbox marks
the message failed at once) and `OptedOut` when the provider says the person opted out (the
outbox revokes their consent and suppresses the message). Any other exception counts as passing.

Channel policy. A channel is registered with its sender factory and a policy:

- transactional (the default: wallet pass updates "apple_wallet", "google_wallet"): the
  customer asked for the pass, so no consent check, no quiet hours, no caps, no rendering;
- marketing (built in: "push", "sms", "voice"): sent only with an opt-in on record for its
  consent channel, inside quiet hours, under the frequency caps, rendered with Jinja.

One message can be marked marketing on a transactional channel with
`enqueue(..., marketing=True, consent=Channel.push)`: a Google Wallet addMessage offer is
marketing (it notifies the phone, so it needs the push opt-in), while the object patch that
carries a new balance on the same channel is not.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from flask import Flask

from app.db import utcnow
from app.loyalty.models import Channel
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


@dataclass(frozen=True)
class ChannelPolicy:
    marketing: bool = False
    # The consent a marketing message on this channel needs.
    consent: Channel | None = None
    # Render the content's text fields as Jinja templates with the customer's fields.
    render: bool = False
    # The sender counts its own tries (raising Undeliverable when they run out), so the
    # outbox's max_attempts does not cut them short: webhooks retry for hours.
    own_retry_limit: bool = False


TRANSACTIONAL = ChannelPolicy()


@dataclass(frozen=True)
class ChannelSpec:
    factory: Callable[[Flask], Sender]
    policy: ChannelPolicy


# channel name -> how to build its sender, and its policy. Domains register at import time.
_CHANNELS: dict[str, ChannelSpec] = {}


def register_channel(
    channel: str,
    factory: Callable[[Flask], Sender],
    *,
    marketing: bool = False,
    consent: Channel | None = None,
    render: bool | None = None,
    own_retry_limit: bool = False,
) -> None:
    if marketing and consent is None:
        raise ValueError(f"marketing channel {channel!r} needs the consent channel it checks")
    policy = ChannelPolicy(
        marketing=marketing,
        consent=consent,
        render=marketing if render is None else render,
        own_retry_limit=own_retry_limit,
    )
    _CHANNELS[channel] = ChannelSpec(factory, policy)


def channel_policy(channel: str) -> ChannelPolicy:
    spec = _CHANNELS.get(channel)
    return spec.policy if spec else TRANSACTIONAL


def build_senders(app: Flask) -> dict[str, Sender]:
    """Every channel's sender for this app; channels nobody registered print to the console."""
    senders: dict[str, Sender] = {"email": ConsoleSender()}
    senders.update({channel: spec.factory(app) for channel, spec in _CHANNELS.items()})
    return senders


# The built-in channels. Their modules load only when a worker builds its senders.


def _push(app: Flask) -> Sender:
    from app.messaging.webpush import make_push_sender

    return make_push_sender(app)


def _sms(app: Flask) -> Sender:
    from app.messaging.sms import make_sms_sender

    return make_sms_sender(app)


def _voice(app: Flask) -> Sender:
    from app.messaging.voice import make_voice_sender

    return make_voice_sender(app)


register_channel("push", _push, marketing=True, consent=Channel.push)
register_channel("sms", _sms, marketing=True, consent=Channel.sms)
register_channel("voice", _voice, marketing=True, consent=Channel.voice)
