"""How Pointcard is put together. Read this module to know everything a change sets off.

`build()` assembles one application from its settings: the database, the outbox's channels and
their senders, the scheduled jobs, the guards every API request passes, the signal receivers and
the session hooks. The web app (`create_app`), the outbox worker (`flask messaging work`) and the
scheduler (`flask scheduler run`) all start here; none of it needs Flask, and nothing registers
itself as a side effect of an import. `flask events list` prints what is connected.

What a till purchase (`POST /api/v1/pos/purchases`) sets off, in order:

1. `app.api.endpoint`: the bearer token (`app.tokens`), then REQUEST_GUARDS below: the
   cashier's account still active (auth), the caller's own rate limit (auth), the audit scope
   (audit); the Idempotency-Key is claimed (`app.idempotency`).
2. `pos.api.create_purchase` -> `loyalty.transactions.record_purchase`: the purchase row, the
   ledger entry and its lot (`loyalty.ledger.credit`), the tier (`loyalty.tiers`), a referral
   bonus on a first purchase. Each balance change sends `balance_changed`, a new tier
   `tier_changed`.
3. RECEIVERS, inside the same transaction (rows only): the Apple pass is marked changed; a
   Google object patch is queued; a webhook event is collected; a re-engagement sequence ends
   won back.
4. SESSION_HOOKS at the flushes and the commit: audit records after each flush; the Apple pass's
   update tag bumped and one push per device queued; the webhook deliveries written.
5. The commit. Later a worker sends the outbox rows through CHANNELS (APNs, Google, webhooks).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from blinker import NamedSignal
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from app import encryption
from app.api import RequestGuards
from app.audit import service as audit
from app.auth import service as auth
from app.auth.abuse import AbuseGuard
from app.campaigns import events as campaign_events
from app.campaigns import jobs as campaign_jobs
from app.campaigns import reengagement
from app.config import INSTANCE_DIR, Settings
from app.db import Database
from app.extensions import SESSION_KEY
from app.geo import events as geo_events
from app.geo import jobs as geo_jobs
from app.geo import service as geo
from app.jobs import Job
from app.loyalty import events as loyalty_events
from app.loyalty import jobs as loyalty_jobs
from app.loyalty import service as loyalty
from app.loyalty.models import Channel
from app.messaging import channels as messaging_channels
from app.messaging import events as messaging_events
from app.messaging import rules as messaging_rules
from app.messaging.channels import Channels, ChannelSpec, marketing
from app.messaging.providers import Sender
from app.privacy import events as privacy_events
from app.privacy import jobs as privacy_jobs
from app.roles import STAFF_ROLES, Role
from app.wallet import jobs as wallet_jobs
from app.wallet import locations as wallet_locations
from app.wallet import messages as wallet_messages
from app.wallet import refresh as wallet_refresh
from app.wallet.apple import receivers as apple
from app.wallet.google import receivers as google
from app.wallet.google.wallet import GoogleWallet
from app.webhooks import jobs as webhook_jobs
from app.webhooks import receivers as webhooks

# --- the outbox's channels ------------------------------------------------------------------------
# A sender is named "module:function" (a factory taking the Services): its libraries and keys load
# only in the process that sends. Marketing channels need an opt-in and keep quiet hours and caps.

CHANNELS = (
    ChannelSpec("push", "app.messaging.webpush:make_push_sender", marketing(Channel.push),
                messaging_channels.with_push_subscription),
    ChannelSpec("sms", "app.messaging.sms:make_sms_sender", marketing(Channel.sms), messaging_channels.with_phone),
    ChannelSpec("voice", "app.messaging.voice:make_voice_sender", marketing(Channel.voice),
                messaging_channels.with_phone),
    # A message on the card in the phone wallet notifies like a push: it needs the push opt-in.
    ChannelSpec("wallet", "app.wallet.messages:make_sender", marketing(Channel.push), wallet_messages.audience),
    ChannelSpec("email", "app.messaging.providers:console_sender", audience=messaging_channels.with_email),
    # Transactional: the customer asked for the pass; the receiver of a webhook is a system.
    ChannelSpec("apple_wallet", "app.wallet.apple.providers:make_pusher"),
    ChannelSpec("google_wallet", "app.wallet.google.sender:build_sender"),
    ChannelSpec("webhook", "app.webhooks.sender:make_sender"),
)  # fmt: skip

# --- signal receivers -----------------------------------------------------------------------------
# (signal, receiver), in the order they run. Receivers run inside the sender's transaction.

RECEIVERS: tuple[tuple[NamedSignal, Callable[..., Any]], ...] = (
    (loyalty_events.customer_enrolled, webhooks.enrolled),
    (loyalty_events.balance_changed, apple.customer_changed),
    (loyalty_events.balance_changed, google.on_balance_changed),
    (loyalty_events.balance_changed, webhooks.points_changed),
    (loyalty_events.balance_changed, reengagement.visit_ends_sequences),
    (loyalty_events.tier_changed, apple.customer_changed),
    (loyalty_events.tier_changed, google.on_tier_changed),
    (loyalty_events.tier_changed, webhooks.tier_changed),
    (loyalty_events.card_changed, apple.customer_changed),
    (loyalty_events.card_changed, google.on_card_changed),
    (loyalty_events.reward_redeemed, webhooks.reward_redeemed),
    (messaging_events.message_delivered, webhooks.message_delivered),
    (privacy_events.customer_erased, webhooks.erased),
    (campaign_events.customer_won_back, webhooks.won_back),
    (campaign_events.scores_written, webhooks.scores_written),
    (geo_events.offers_changed, wallet_refresh.offers_changed),
    (geo_events.customer_moved, wallet_refresh.customer_moved),
)

# --- session hooks --------------------------------------------------------------------------------
# (SQLAlchemy session event, hook), attached to this application's session factory only.

SESSION_HOOKS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("after_flush", audit.record_flushed_changes),
    ("before_commit", apple.update_passes),
    ("after_transaction_end", apple.forget_on_rollback),
    ("before_commit", webhooks.write_deliveries),
    ("after_transaction_create", webhooks.mark_savepoint),
    ("after_transaction_end", webhooks.forget_on_rollback),
)

# --- scheduled jobs -------------------------------------------------------------------------------

JOBS: tuple[Job, ...] = (
    *loyalty_jobs.JOBS,
    *campaign_jobs.JOBS,
    *geo_jobs.JOBS,
    *wallet_jobs.JOBS,
    *privacy_jobs.JOBS,
    *webhook_jobs.JOBS,
)


@dataclass(eq=False)
class Services:
    """One application's parts, as `build()` made them. A request reaches them through
    `app.extensions.current_services()`, any session through `app.extensions.services_of()`."""

    settings: Settings
    database: Database
    channels: Channels
    jobs: tuple[Job, ...]
    request_guards: RequestGuards
    abuse_guard: AbuseGuard
    google_wallet: GoogleWallet
    _senders: dict[str, Sender] = field(default_factory=dict, repr=False)

    def sender(self, channel: str) -> Sender:
        """The channel's sender, built on first use and kept (a web node steers live calls with it)."""
        if channel not in self._senders:
            self._senders[channel] = self.channels.sender_factory(channel)(self)
        return self._senders[channel]

    def senders(self) -> dict[str, Sender]:
        """Every channel's sender, new, for a worker (which closes them when it stops)."""
        return {spec.name: self.channels.sender_factory(spec.name)(self) for spec in self.channels}


def build(
    settings: Settings | None = None, database: Database | None = None, *, channels: Iterable[ChannelSpec] = CHANNELS
) -> Services:
    """Everything one process of Pointcard needs, from its settings (the environment's by default).
    `channels`: the outbox's, CHANNELS unless a test process adds one of its own."""
    settings = settings or Settings()
    # The contact fields' keys; production without them refuses to start here.
    encryption.configure(settings.privacy, env=settings.env, instance_dir=INSTANCE_DIR)
    database = database or Database(settings.database_url)
    abuse_guard = AbuseGuard(settings, settings.redis_url or "memory://")
    services = Services(
        settings=settings,
        database=database,
        channels=Channels(channels),
        jobs=JOBS,
        request_guards=RequestGuards(
            principal_checks={
                Role.customer: loyalty.check_card_active,
                **dict.fromkeys(STAFF_ROLES, auth.check_staff_active),
            },
            limit_caller=abuse_guard.check_caller,
            audit_scope=functools.partial(audit.audited_request, settings=settings.audit),
        ),
        abuse_guard=abuse_guard,
        google_wallet=GoogleWallet(settings),
    )
    _connect_receivers()
    _wire_sessions(database.session_factory, services)
    # Sources one domain offers another without an import between them.
    messaging_rules.register_location_source(geo.last_location)
    wallet_locations.register_offer_texts(geo.offer_texts)
    wallet_locations.register_position_source(geo.last_location)
    return services


def _connect_receivers() -> None:
    # blinker's signals are process-wide; connecting a receiver again is a no-op.
    for signal, receiver in RECEIVERS:
        signal.connect(receiver, weak=False)


def _wire_sessions(factory: sessionmaker, services: Services) -> None:
    factory.configure(info={SESSION_KEY: services})
    for name, hook in SESSION_HOOKS:
        if not event.contains(factory, name, hook):  # one database, several apps (tests): hooks once
            event.listen(factory, name, hook)


def describe(services: Services) -> list[tuple[str, str, list[str]]]:
    """(signal or session event, what it means, who listens in order), as connected now: for
    `flask events list`."""
    rows = []
    for signal in dict.fromkeys(signal for signal, _ in RECEIVERS):
        receivers = [_name(receiver) for receiver in _receivers_of(signal)]
        rows.append((f"signal {signal.name}", signal.__doc__ or "", receivers))
    factory = services.database.session_factory
    for name in dict.fromkeys(name for name, _ in SESSION_HOOKS):
        hooks = [
            _name(hook)
            for hook_name, hook in SESSION_HOOKS
            if hook_name == name and event.contains(factory, name, hook)
        ]
        rows.append((f"session {name}", "SQLAlchemy session event, on this application's sessions", hooks))
    return rows


def _receivers_of(signal: NamedSignal) -> list[Callable[..., Any]]:
    found = []
    for receiver in signal.receivers.values():
        target = receiver() if isinstance(receiver, weakref.ref) else receiver
        if target is not None:
            found.append(target)
    return found


def _name(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__qualname__}"
