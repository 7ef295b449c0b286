"""The outbox's "webhook" channel: one signed POST per attempt, its answer kept on the delivery.

2xx: delivered. 410 Gone: the receiver asks to be forgotten, so the endpoint is switched off
and the delivery fails. Anything else (other 4xx, 5xx, 429, timeouts, refused connections) is
retried on the webhook schedule, or later if the receiver's Retry-After says so, until the
attempts run out. Each attempt is signed afresh with the endpoint's current secret (and its previous one, for a
while after a rotation).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import certifi
import httpx

from app.db import Database, utcnow
from app.messaging.models import Message
from app.messaging.providers import RetryLater, Undeliverable, parse_retry_after
from app.webhooks import addresses, service, signing
from app.webhooks.config import WebhooksSettings
from app.webhooks.models import DeliveryState

if TYPE_CHECKING:
    from app.wiring import Services

log = logging.getLogger(__name__)

USER_AGENT = "Pointcard-Webhooks/1"
JITTER = 0.2
# A receiver's Retry-After is honoured up to this; past it, the schedule applies.
MAX_RETRY_AFTER = 24 * 3600


@dataclass(frozen=True)
class Answer:
    status_code: int
    excerpt: str
    retry_after: str | None


def _excerpt(response: httpx.Response, chars: int) -> str:
    """The start of the body only: a receiver answering with gigabytes costs us a few kilobytes."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= chars * 4:  # up to 4 bytes a character in UTF-8
            break
    return data.decode(response.encoding or "utf-8", errors="replace")[:chars]


def encode(payload: dict) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


class WebhookSender:
    def __init__(self, *, database: Database, settings: WebhooksSettings, timeout: float) -> None:
        self.database, self.settings = database, settings
        context = ssl.create_default_context(cafile=certifi.where())
        if settings.ca_file is not None:
            context.load_verify_locations(cafile=str(settings.ca_file))
        # No redirects (a 3xx could point inside), no proxies from the environment, no cookies kept.
        self.client = httpx.Client(
            verify=context, timeout=timeout, follow_redirects=False, trust_env=False, headers={"User-Agent": USER_AGENT}
        )

    def close(self) -> None:
        self.client.close()

    def send(self, message: Message) -> str:
        delivery_id = message.content.get("delivery_id")
        if not isinstance(delivery_id, int):
            raise Undeliverable("the message names no webhook delivery")
        with self.database.transaction() as session:
            found = service.delivery_for_send(session, delivery_id)
            if found is None:
                raise Undeliverable("the delivery or its endpoint was deleted")
            delivery, endpoint = found
            if delivery.state is DeliveryState.delivered:
                # A worker died after the receiver's 2xx was recorded, before its outbox row was:
                # the receiver has it, so it does not go again.
                return "already-delivered"
            request = (
                delivery.uuid,
                delivery.event_type,
                delivery.payload,
                endpoint.url,
                service.signing_secrets(endpoint, now=utcnow()),
                endpoint.id,
                endpoint.active,
            )
        uuid, event_type, payload, url, secrets_, endpoint_id, active = request
        if not active and event_type != "ping":
            self._record(delivery_id, DeliveryState.failed, error="the endpoint is switched off")
            raise Undeliverable("the endpoint is switched off")
        final = message.attempts >= self.settings.max_attempts
        started = time.monotonic()
        try:
            response = self._post(url, uuid=uuid, event_type=event_type, body=encode(payload), secrets_=secrets_)
        except addresses.AddressRefused as exc:
            self._record(delivery_id, DeliveryState.failed, error=str(exc), started=started)
            raise Undeliverable(str(exc)) from exc
        except Exception as exc:  # timeouts, refused connections, TLS failures: recorded, then retried
            error = f"{type(exc).__name__}: {exc}"
            self._record(
                delivery_id, DeliveryState.failed if final else DeliveryState.pending, error=error, started=started
            )
            raise self._retry(message, error, None, final) from exc
        return self._settle(message, delivery_id, endpoint_id, response, started, final)

    def _settle(
        self, message: Message, delivery_id: int, endpoint_id: int, response: Answer, started: float, final: bool
    ) -> str:
        code, excerpt = response.status_code, response.excerpt
        if 200 <= code < 300:
            self._record(delivery_id, DeliveryState.delivered, code=code, response=excerpt, started=started)
            return f"{code}"
        if code == 410:
            reason = "the receiver answered 410 Gone"
            self._record(
                delivery_id,
                DeliveryState.failed,
                code=code,
                response=excerpt,
                error=reason,
                started=started,
                disable=(endpoint_id, reason),
            )
            raise Undeliverable(reason)
        error = f"the receiver answered {code}"
        self._record(
            delivery_id,
            DeliveryState.failed if final else DeliveryState.pending,
            code=code,
            response=excerpt,
            error=error,
            started=started,
        )
        raise self._retry(message, error, parse_retry_after(response.retry_after), final)

    def _retry(self, message: Message, error: str, retry_after: float | None, final: bool) -> Exception:
        if final:
            return Undeliverable(f"{error}; no tries left")
        schedule = self.settings.retry_seconds
        wait = schedule[min(message.attempts, len(schedule)) - 1] * random.uniform(1 - JITTER, 1 + JITTER)
        if retry_after is not None:
            wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
        return RetryLater(error, retry_after=wait)

    def _post(self, url: str, *, uuid: str, event_type: str, body: bytes, secrets_: list[str]) -> Answer:
        target = addresses.parse(url, self.settings)
        address = addresses.resolve(target, self.settings)
        # Connect to the address just checked; the name is still what TLS verifies and Host says.
        literal = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        default_port = 443 if target.scheme == "https" else 80
        name = f"[{target.host}]" if ":" in target.host else target.host  # an IPv6 literal
        host_header = name if target.port == default_port else f"{name}:{target.port}"
        headers = {
            "Content-Type": "application/json",
            "Host": host_header,
            "Pointcard-Event": event_type,
            "Pointcard-Delivery": uuid,
            "Pointcard-Signature": signing.signature_header(secrets_=secrets_, body=body, timestamp=int(time.time())),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        url = f"{target.scheme}://{literal}:{target.port}{target.path}"
        with self.client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
            return Answer(
                response.status_code,
                _excerpt(response, self.settings.response_excerpt_chars),
                response.headers.get("retry-after"),
            )

    def _record(
        self,
        delivery_id: int,
        state: DeliveryState,
        *,
        code: int | None = None,
        response: str | None = None,
        error: str | None = None,
        started: float | None = None,
        disable: tuple[int, str] | None = None,
    ) -> None:
        duration = int((time.monotonic() - started) * 1000) if started is not None else None
        with self.database.transaction() as session:
            service.record_attempt(
                session,
                delivery_id,
                state=state,
                status_code=code,
                response=response,
                error=error,
                duration_ms=duration,
                at=utcnow(),
            )
            if disable is not None:
                service.disable_endpoint(session, *disable)


def make_sender(services: Services) -> WebhookSender:
    settings = services.settings
    # Every call must end inside the outbox's send window (see app/messaging/outbox.py).
    timeout = min(settings.webhooks.timeout_seconds, settings.messaging.send_timeout_seconds)
    return WebhookSender(database=services.database, settings=settings.webhooks, timeout=timeout)
