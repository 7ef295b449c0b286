"""Web Push (RFC 8030/8291/8292) with pywebpush: the sender the outbox uses.

A message goes to every subscription the customer has. Subscriptions already pushed are
remembered on the message across a retry, so a 429 on one browser does not repeat the
notification on another.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import requests
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, select

from app.db import Database
from app.messaging.config import MessagingSettings
from app.messaging.content import push_payload
from app.messaging.models import Message, PushSubscription
from app.messaging.providers import ConsoleSender, RetryLater, Sender, Undeliverable, parse_retry_after
from app.messaging.vapid import private_pem

if TYPE_CHECKING:
    from app.wiring import Services

log = logging.getLogger(__name__)

DEV_SUBJECT = "mailto:pointcard@localhost"


class WebPushSender:
    def __init__(self, *, database: Database, settings: MessagingSettings, pem: bytes, subject: str) -> None:
        self.database, self.settings, self.subject = database, settings, subject
        self.vapid = Vapid.from_pem(pem)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def send(self, message: Message) -> str:
        done = set(message.details.get("push_done", []))
        subscriptions = [s for s in self._subscriptions(message.customer_id) if s.id not in done]
        if not subscriptions and not done:
            raise Undeliverable("the customer has no push subscription")
        payload = push_payload(message.content)
        outcomes = {s.id: self._push(s, payload, message) for s in subscriptions}
        return self._conclude(outcomes, done)

    def _subscriptions(self, customer_id: int | None) -> list[PushSubscription]:
        with self.database.transaction() as session:
            return list(
                session.scalars(
                    select(PushSubscription)
                    .where(PushSubscription.customer_id == customer_id)
                    .order_by(PushSubscription.id)
                )
            )

    def _push(self, subscription: PushSubscription, payload: bytes, message: Message) -> tuple[str, object]:
        """("ok", location) | ("gone", None) | ("retry", RetryLater) | ("fatal", reason)."""
        # A fresh dict per call: pywebpush writes `aud` (and `exp` when missing) into it.
        claims = {"sub": self.subject, "exp": int(time.time()) + self.settings.vapid_expiry_seconds}
        ttl = int(message.content.get("ttl") or self.settings.push_ttl_seconds)
        headers = {
            "Urgency": message.content.get("urgency") or self.settings.push_urgency,
            # A resend of a message still waiting at the push service replaces it.
            "Topic": f"pointcard-{message.id}",
        }
        try:
            response = webpush(
                subscription_info={
                    "endpoint": subscription.endpoint,
                    "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                },
                data=payload,
                vapid_private_key=self.vapid,
                vapid_claims=claims,
                ttl=ttl,
                timeout=self.settings.push_timeout_seconds,
                headers=headers,
                requests_session=self._session(),
            )
        except WebPushException as exc:
            return _classify(exc)
        except requests.RequestException as exc:
            return "retry", RetryLater(f"push service unreachable: {exc}")
        return "ok", response.headers.get("Location") or f"push-{subscription.id}"

    def _conclude(self, outcomes: dict[int, tuple[str, object]], done: set[int]) -> str:
        gone = [sid for sid, (kind, _) in outcomes.items() if kind == "gone"]
        if gone:
            self._forget(gone)
        ok = done | {sid for sid, (kind, _) in outcomes.items() if kind == "ok"}
        retries = [value for kind, value in outcomes.values() if kind == "retry" and isinstance(value, RetryLater)]
        if retries:
            after = max((r.retry_after or 0 for r in retries), default=0) or None
            raise RetryLater("; ".join(str(r) for r in retries), retry_after=after, details={"push_done": sorted(ok)})
        fatal = [str(value) for kind, value in outcomes.values() if kind == "fatal"]
        if fatal and not ok:
            raise Undeliverable("; ".join(fatal))
        if not ok:
            raise Undeliverable("every push subscription of the customer is gone (404/410)")
        locations = [str(value) for kind, value in outcomes.values() if kind == "ok"]
        return (locations[0] if locations else "push")[:128]

    def _forget(self, subscription_ids: list[int]) -> None:
        with self.database.transaction() as session:
            session.execute(delete(PushSubscription).where(PushSubscription.id.in_(subscription_ids)))
        log.info("push subscriptions %s are gone; deleted", subscription_ids)


def _classify(exc: WebPushException) -> tuple[str, object]:
    status = exc.response.status_code if exc.response is not None else None
    if status in (404, 410):
        return "gone", None
    if status == 429 or (status is not None and status >= 500):
        return "retry", RetryLater(
            f"push service answered {status}", retry_after=parse_retry_after(exc.response.headers.get("Retry-After"))
        )
    if status == 413:
        return "fatal", "push service answered 413: payload too large"
    if status is None:
        return "retry", RetryLater(f"push failed: {exc.message}")
    return "fatal", f"push service answered {status}: {exc.response.text[:200]}"


def make_push_sender(services: Services) -> Sender:
    settings = services.settings
    messaging: MessagingSettings = settings.messaging
    pem = private_pem(messaging)
    if messaging.push_backend == "console" or (messaging.push_backend == "auto" and pem is None):
        return ConsoleSender()
    if pem is None:
        raise RuntimeError("push_backend is webpush but there is no VAPID key: run 'flask messaging vapid-keys'")
    subject = messaging.vapid_subject
    if subject is None:
        if settings.env == "production":
            raise RuntimeError("POINTCARD_MESSAGING__VAPID_SUBJECT must be a mailto: or https: contact in production")
        subject = DEV_SUBJECT
    return WebPushSender(database=services.database, settings=messaging, pem=pem, subject=subject)
