"""The outbox: enqueue inside a transaction; workers claim, check, send and settle after commit.

Why nothing is lost or sent twice:

- A message is a row written in the caller's transaction, so it exists exactly when the
  change that caused it does; its dedupe key makes a retried job add nothing.
- A claim is a lease. The claiming transaction moves due rows to `sending` with `lease_until`
  and counts the attempt; on PostgreSQL it takes them FOR UPDATE SKIP LOCKED, so concurrent
  workers never claim the same row (SQLite's writers are serial anyway).
- A send starts only while at least `send_timeout_seconds` of its lease remain, and every
  provider call has a shorter timeout, so a lease never expires while its worker still talks
  to the provider: a row is taken again only when its worker is dead.
- Outcomes are written as they come back (those that came back together in one
  transaction), each fenced by (id, state='sending', attempts): a worker that lost its lease
  cannot overwrite what another one did.
- The only window left is a worker killed after the provider accepted a message and before
  its outcome was written. A new send starts only once an earlier outcome is written, so that
  window holds at most `concurrency` messages per worker. Their retry carries the same
  idempotency key (the message id) where the provider takes one (an Idempotency-Key header;
  Web Push's Topic, which replaces a copy still waiting at the push service), and a Twilio
  status callback that recorded the provider id first turns the retry into a no-op. Against
  a provider with idempotency keys that is exactly once; against one without, at most
  `concurrency` duplicates per killed worker.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import bindparam, or_, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.db import Database, insert_unless_exists, rowcount, table_of, utcnow
from app.extensions import services_of
from app.loyalty.models import Channel, Customer
from app.loyalty.service import record_consents
from app.messaging import content as content_rules
from app.messaging import rules
from app.messaging.config import MessagingSettings
from app.messaging.models import Message, MessageState
from app.messaging.providers import OptedOut, RetryLater, Sender, Undeliverable

log = logging.getLogger(__name__)

DEFAULTS = MessagingSettings()
# Namespace of the per-customer advisory locks that make the frequency caps exact.
CAP_LOCK_NAMESPACE = 5_401


def enqueue(
    *,
    session: Session,
    customer_id: int | None,
    channel: str,
    content: dict,
    dedupe_key: str,
    template: str = "",
    not_before: datetime | None = None,
    variables: dict | None = None,
    marketing: bool | None = None,
    consent: Channel | None = None,
    fields: dict | None = None,
) -> int | None:
    """Add a message unless one with this dedupe key exists; its id, or None if it did.

    Marketing content is rendered now with the customer's fields (plus `variables`) and
    checked for its channel; what cannot be sent is refused with `MessageRejected`. The
    channel's policy and the limits come from the application the session belongs to.
    `fields`: the customer's template fields when the caller loaded them already (a campaign
    loads a whole batch's in one query).
    """
    services = services_of(session)
    settings, policy = services.settings.messaging, services.channels.policy(channel)
    marketing = policy.marketing if marketing is None else marketing
    consent = consent or policy.consent
    if marketing and (customer_id is None or consent is None):
        raise content_rules.MessageRejected("A marketing message needs a customer and the consent it relies on.")
    if policy.render:
        context = {
            **(variables or {}),
            **(fields if fields is not None else customer_fields_or_empty(session, customer_id)),
        }
        content = content_rules.render(content, context)
    content = _checked(channel, content, marketing=marketing, settings=settings)
    now = utcnow()
    return session.execute(
        _insert_statement(session.get_bind().dialect.name),
        {
            "customer_id": customer_id,
            "channel": channel,
            "content": content,
            "dedupe_key": dedupe_key,
            "template": template,
            "marketing": marketing,
            "consent_channel": consent.value if consent else None,
            "state": MessageState.queued,
            "not_before": not_before or now,
            "attempts": 0,
            "details": {},
            "created_at": now,
        },
    ).scalar()


@functools.cache
def _insert_statement(dialect: str):
    """Built once: a campaign enqueues thousands, and building the statement is most of the cost."""
    return insert_unless_exists(dialect, table_of(Message), ["dedupe_key"])


def customer_fields_or_empty(session: Session, customer_id: int | None) -> dict:
    return content_rules.customer_fields(session, customer_id) if customer_id is not None else {}


def _checked(channel: str, content: dict, *, marketing: bool, settings: MessagingSettings) -> dict:
    if channel == "push":
        content_rules.check_push(content)
    elif channel == "sms":
        if marketing:
            content = {
                **content,
                "body": content_rules.with_opt_out(str(content.get("body") or ""), settings.sms_opt_out_footer),
            }
        content_rules.check_sms(content, max_segments=settings.sms_max_segments)
    elif channel == "voice":
        content_rules.check_voice(content)
    return content


# --- claiming ----------------------------------------------------------------------------------


def claim_batch(
    *, session: Session, limit: int, now: datetime, settings: MessagingSettings | None = None
) -> list[Message]:
    """Take due rows, apply the send-time rules, lease the ones that may go; those are returned."""
    return _claim(session, limit, now, settings or DEFAULTS)[0]


def _claim(session: Session, limit: int, now: datetime, settings: MessagingSettings) -> tuple[list[Message], int]:
    due = or_(
        (Message.state == MessageState.queued) & (Message.not_before <= now),
        (Message.state == MessageState.sending) & (Message.lease_until < now),
    )
    rows = session.scalars(
        select(Message)
        .where(due)
        .order_by(Message.not_before, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    gate = _Gate(session, [m for m in rows if m.marketing and m.customer_id is not None], settings, now)
    claimed = [row for row in rows if _apply(row, gate.decide(row), now=now)]
    _lease(session, claimed, until=now + timedelta(seconds=settings.lease_seconds))
    recipients = dict(gate.recipients)
    missing = {m.customer_id for m in claimed if m.customer_id is not None} - recipients.keys()
    if missing:
        recipients.update(rules.load_recipients(session, missing))
    for row in claimed:
        row.recipient = recipients.get(row.customer_id) if row.customer_id is not None else None
    session.flush()
    return claimed, len(rows)


def _lease(session: Session, claimed: list[Message], *, until: datetime) -> None:
    """One UPDATE for the whole batch (not one per row): the claim is the worker's hot path."""
    if not claimed:
        return
    session.execute(
        update(Message)
        .where(Message.id.in_([m.id for m in claimed]))
        .values(state=MessageState.sending, lease_until=until, attempts=Message.attempts + 1, reason=None),
        execution_options={"synchronize_session": False},
    )
    for row in claimed:
        for name, value in (
            ("state", MessageState.sending),
            ("lease_until", until),
            ("attempts", row.attempts + 1),
            ("reason", None),
        ):
            set_committed_value(row, name, value)


class _Gate:
    """Consent, quiet hours and caps for one batch, loaded in a few queries."""

    def __init__(self, session: Session, marketing: list[Message], settings: MessagingSettings, now: datetime):
        self.session, self.settings, self.now = session, settings, now
        customer_ids = sorted({m.customer_id for m in marketing if m.customer_id is not None})
        self.recipients: dict[int, rules.Recipient] = {}
        self.consents: dict = {}
        self.caps: rules.CapCounter | None = None
        if not customer_ids:
            return
        if session.get_bind().dialect.name == "postgresql":
            # Two workers must not both let through the message that reaches a customer's cap.
            session.execute(
                text("SELECT pg_advisory_xact_lock(:ns, id) FROM unnest(CAST(:ids AS int[])) AS id"),
                {"ns": CAP_LOCK_NAMESPACE, "ids": customer_ids},
            )
        self.recipients = rules.load_recipients(session, customer_ids)
        self.consents = rules.latest_consents(session, customer_ids)
        self.caps = rules.CapCounter(session, customer_ids, settings, now)

    def decide(self, message: Message) -> rules.Decision:
        if message.state is MessageState.sending and message.provider_id:
            # The provider reported on the last attempt (status callback) before its worker died.
            return rules.Decision(send=False, accepted=True)
        if not message.marketing or message.customer_id is None:
            return rules.SEND
        recipient = self.recipients.get(message.customer_id)
        if recipient is None:
            return rules.Decision(send=False, reason="the customer no longer exists")
        consent_channel = message.consent_channel or message.channel
        problem = rules.consent_problem(self.consents.get((message.customer_id, consent_channel)), consent_channel)
        if problem:
            return rules.Decision(send=False, reason=problem)
        quiet = rules.quiet_hours_decision(self.session, recipient, self.settings, self.now)
        if not quiet.send:
            return quiet
        assert self.caps is not None  # loaded whenever there are marketing messages
        return self.caps.decision(message.customer_id, message.channel)


def _apply(row: Message, decision: rules.Decision, *, now: datetime) -> bool:
    """Record the gate's decision on the row; True when the row may be leased for sending."""
    if decision.send:
        return True
    row.lease_until = None
    if decision.accepted:
        row.state, row.sent_at = MessageState.sent, row.sent_at or now
    elif decision.until is not None:
        row.state, row.not_before, row.reason = MessageState.queued, decision.until, decision.reason
    else:
        row.state, row.reason = MessageState.suppressed, decision.reason
    return False


# --- sending and settling ----------------------------------------------------------------------


def drain_once(
    *,
    database: Database,
    senders: dict[str, Sender],
    batch_size: int | None = None,
    settings: MessagingSettings | None = None,
    executor: Executor | None = None,
) -> int:
    """Claim one batch, send each concurrently, record each outcome.

    Returns how many due rows it handled: sent or tried, and also suppressed or deferred.
    """
    settings = settings or DEFAULTS
    with database.transaction() as session:
        claimed, handled = _claim(session, batch_size or settings.batch_size, utcnow(), settings)
    if claimed:
        _send_all(claimed, database=database, senders=senders, settings=settings, executor=executor)
    return handled


@dataclass
class Outcome:
    """What to record for one send, and (opted out) what else to do in the same transaction."""

    message: Message
    values: dict
    then: Callable[[Session], None] | None = None


def _send_all(
    claimed: list[Message],
    *,
    database: Database,
    senders: dict[str, Sender],
    settings: MessagingSettings,
    executor: Executor | None,
) -> None:
    """Send concurrently and record outcomes as they come back, all that came back meanwhile in
    one transaction (group commit). A new send starts only when an outcome is recorded, so at
    most `concurrency` messages are ever sent-but-unrecorded: all a killed worker can leave."""
    pool = executor or ThreadPoolExecutor(max_workers=min(settings.concurrency, len(claimed)))
    waiting = iter(claimed)

    def start(count: int) -> set[Future]:
        return {
            pool.submit(attempt, m, sender=senders.get(m.channel), settings=settings) for m in islice(waiting, count)
        }

    try:
        pending = start(settings.concurrency)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            settle(database, [future.result() for future in done])
            pending |= start(len(done))
    finally:
        if executor is None:
            pool.shutdown()


def attempt(message: Message, *, sender: Sender | None, settings: MessagingSettings) -> Outcome:
    """Send one leased message; what to record. Never raises for a provider's failure."""
    assert message.lease_until is not None, "send only leased messages"
    if message.lease_until - utcnow() < timedelta(seconds=settings.send_timeout_seconds):
        # Too little lease left to finish the call before another worker may take the row.
        return Outcome(message, {"state": MessageState.queued, "attempts": message.attempts - 1})
    try:
        if sender is None:
            raise Undeliverable(f"no sender for channel {message.channel!r}")
        provider_id = sender.send(message)
    except Exception as exc:  # any provider failure is recorded on the row, never lost
        log.warning("message %s (%s) failed: %s", message.id, message.channel, exc)
        revoke = (lambda session, why=str(exc): _revoke(session, message, why)) if isinstance(exc, OptedOut) else None
        return Outcome(message, _failure(message, exc, settings, sender), then=revoke)
    return Outcome(
        message, {"state": MessageState.sent, "provider_id": provider_id, "sent_at": utcnow(), "error": None}
    )


def settle(database: Database, outcomes: list[Outcome]) -> None:
    """Write each outcome only if this worker still holds the claim (same state and attempt).

    Outcomes of the same shape go in one executemany: this runs for every message sent.
    """
    with database.transaction() as session:
        if database.is_postgres:
            # Not waiting for the WAL flush: losing this record in a database crash can only
            # make the message go again (its lease runs out), never lose it.
            session.execute(text("SET LOCAL synchronous_commit = off"))
        shapes: dict[tuple[str, ...], list[Outcome]] = {}
        for outcome in outcomes:
            if outcome.then is not None:
                if rowcount(session.execute(_settle_statement(tuple(outcome.values)), _params(outcome))) == 1:
                    outcome.then(session)
            else:
                shapes.setdefault(tuple(sorted(outcome.values)), []).append(outcome)
        for names, group in shapes.items():
            session.execute(_settle_statement(names), [_params(o) for o in group])


def _settle_statement(names: tuple[str, ...]):
    table = table_of(Message)
    return (
        update(table)
        .where(
            table.c.id == bindparam("_id"),
            table.c.state == MessageState.sending,
            table.c.attempts == bindparam("_attempts"),
        )
        .values(lease_until=None, **{name: bindparam(f"_v_{name}") for name in names})
    )


def _params(outcome: Outcome) -> dict:
    return {
        "_id": outcome.message.id,
        "_attempts": outcome.message.attempts,
        **{f"_v_{name}": value for name, value in outcome.values.items()},
    }


def send_one(message: Message, *, database: Database, sender: Sender | None, settings: MessagingSettings) -> None:
    """Send one leased message and record the outcome at once."""
    settle(database, [attempt(message, sender=sender, settings=settings)])


def _failure(message: Message, error: Exception, settings: MessagingSettings, sender: Sender | None) -> dict:
    text_ = f"{type(error).__name__}: {error}"[:2000]
    if isinstance(error, OptedOut):
        return {"state": MessageState.suppressed, "error": text_, "reason": f"recipient opted out: {error}"[:300]}
    out_of_tries = message.attempts >= settings.max_attempts and not getattr(sender, "counts_own_tries", False)
    if isinstance(error, Undeliverable) or out_of_tries:
        return {"state": MessageState.failed, "error": text_}
    values = {
        "state": MessageState.queued,
        "error": text_,
        "not_before": utcnow() + timedelta(seconds=backoff(message.attempts, error, settings)),
    }
    if isinstance(error, RetryLater) and error.details:
        values["details"] = {**(message.details or {}), **error.details}
    return values


def backoff(attempts: int, error: Exception, settings: MessagingSettings) -> float:
    """Exponential with jitter; never sooner than the provider's Retry-After."""
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (attempts - 1))
    delay *= 0.5 + random.random()
    if isinstance(error, RetryLater) and error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return delay


def _revoke(session: Session, message: Message, why: str) -> None:
    customer = session.get(Customer, message.customer_id) if message.customer_id else None
    if customer is None:
        return
    consent = Channel(message.consent_channel or message.channel)
    record_consents(
        session=session,
        customer=customer,
        consents={consent: False},
        source=f"provider:{message.channel}",
        disclosure=why[:2000],
        ip_address=None,
    )
