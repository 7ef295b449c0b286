"""The outbox's channels: for each, how to build its sender, the rules its messages follow, and
whom it can reach. The wiring (`app/wiring.py`) lists them; the outbox and the campaigns ask here.

Policy. A channel is transactional unless it says otherwise (wallet pass updates
"apple_wallet", "google_wallet", "webhook"): the customer asked for the pass, so no consent
check, no quiet hours, no caps, no rendering. A marketing channel ("push", "sms", "voice",
"wallet") is sent only with an opt-in on record for its consent channel, inside quiet hours,
under the frequency caps, rendered with Jinja.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.loyalty.models import Channel, Customer
from app.messaging.models import PushSubscription
from app.messaging.providers import Sender

if TYPE_CHECKING:
    from app.wiring import Services


@dataclass(frozen=True)
class ChannelPolicy:
    marketing: bool = False
    # The consent a marketing message on this channel needs.
    consent: Channel | None = None
    # Render the content's text fields as Jinja templates with the customer's fields.
    render: bool = False


TRANSACTIONAL = ChannelPolicy()


def marketing(consent: Channel) -> ChannelPolicy:
    return ChannelPolicy(marketing=True, consent=consent, render=True)


# Builds a channel's sender for one process (a worker, or a web node steering live calls). Named
# as "module:function", so a sender's libraries and keys load only where messages are sent.
SenderFactory = Callable[["Services"], Sender]
# Which of these customers the channel can reach at all (a number, a subscription, a saved card).
Audience = Callable[[Session, list[int]], set[int]]


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    sender: str  # "module:function", a SenderFactory
    policy: ChannelPolicy = TRANSACTIONAL
    audience: Audience | None = None


class Channels:
    """The channels of one application, by name."""

    def __init__(self, specs: Iterable[ChannelSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}

    def __iter__(self):
        return iter(self._specs.values())

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def spec(self, name: str) -> ChannelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"no channel {name!r}; the wiring lists {sorted(self._specs)}") from None

    def policy(self, name: str) -> ChannelPolicy:
        spec = self._specs.get(name)
        return spec.policy if spec else TRANSACTIONAL

    def sender_factory(self, name: str) -> SenderFactory:
        return pkgutil.resolve_name(self.spec(name).sender)

    def reachable(self, session: Session, name: str, customer_ids: list[int]) -> set[int]:
        """Those of the customers this channel can reach (every one, if it has no audience)."""
        audience = self.spec(name).audience
        return set(customer_ids) if audience is None else audience(session, customer_ids)


# --- who the built-in channels reach ------------------------------------------------------------
# Whether there is a number or an address is all this needs: the blind indexes say so without
# decrypting anything.


def with_phone(session: Session, customer_ids: list[int]) -> set[int]:
    return set(
        session.scalars(select(Customer.id).where(Customer.id.in_(customer_ids), Customer.phone_index.is_not(None)))
    )


def with_email(session: Session, customer_ids: list[int]) -> set[int]:
    return set(
        session.scalars(select(Customer.id).where(Customer.id.in_(customer_ids), Customer.email_index.is_not(None)))
    )


def with_push_subscription(session: Session, customer_ids: list[int]) -> set[int]:
    return set(
        session.scalars(select(PushSubscription.customer_id).where(PushSubscription.customer_id.in_(customer_ids)))
    )
