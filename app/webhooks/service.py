"""Endpoints, and events turned into deliveries in the caller's transaction. Flushes, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.crud import get_or_404
from app.db import new_uuid, rowcount, utcnow
from app.errors import Conflict, NotFound, Unprocessable
from app.loyalty.models import Card, Customer, Tier
from app.messaging.models import Message
from app.messaging.outbox import enqueue
from app.webhooks import addresses, signing
from app.webhooks.config import WebhooksSettings
from app.webhooks.models import DeliveryState, EventType, WebhookDelivery, WebhookEndpoint
from app.webhooks.schemas import DeliveryQuery, EndpointCreate, EndpointUpdate

CHANNEL = "webhook"


class EndpointRefused(Unprocessable):
    slug, title = "webhook-url-refused", "Webhook URL refused"


# --- endpoints ---------------------------------------------------------------------------------


def _checked_url(url: str, settings: WebhooksSettings) -> str:
    try:
        addresses.check(url, settings)
    except addresses.AddressRefused as exc:
        raise EndpointRefused(str(exc), field="url") from exc
    return url.strip()


def create_endpoint(
    *, session: Session, body: EndpointCreate, settings: WebhooksSettings, created_by_id: int | None
) -> WebhookEndpoint:
    now = utcnow()
    endpoint = WebhookEndpoint(
        url=_checked_url(body.url, settings),
        description=body.description,
        events=[str(e) for e in body.events],
        secret=signing.new_secret(),
        active=body.active,
        created_by_id=created_by_id,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def update_endpoint(
    *, session: Session, endpoint_id: int, body: EndpointUpdate, settings: WebhooksSettings
) -> WebhookEndpoint:
    endpoint = get_or_404(session, WebhookEndpoint, endpoint_id)
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        endpoint.url = _checked_url(changes["url"], settings)
    if "events" in changes:
        endpoint.events = [str(e) for e in changes["events"]]
    if "description" in changes:
        endpoint.description = changes["description"]
    if "active" in changes:
        endpoint.active = changes["active"]
        if endpoint.active:
            endpoint.disabled_reason = None
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint


def rotate_secret(*, session: Session, endpoint_id: int, old_secret_hours: float) -> WebhookEndpoint:
    """A new secret now; the old one also signs for `old_secret_hours` (0: stops at once), so the
    receiver can switch to the new one without refusing deliveries in between."""
    endpoint = get_or_404(session, WebhookEndpoint, endpoint_id)
    now = utcnow()
    if old_secret_hours > 0:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = now + timedelta(hours=old_secret_hours)
    else:
        endpoint.previous_secret, endpoint.previous_secret_until = None, None
    endpoint.secret, endpoint.updated_at = signing.new_secret(), now
    session.flush()
    return endpoint


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> list[str]:
    previous, until = endpoint.previous_secret, endpoint.previous_secret_until
    return [endpoint.secret, previous] if previous and until and until > now else [endpoint.secret]


def delete_endpoint(*, session: Session, endpoint_id: int) -> None:
    endpoint = get_or_404(session, WebhookEndpoint, endpoint_id)
    session.delete(endpoint)  # its deliveries go with it (ON DELETE CASCADE); their messages fail
    session.flush()


def list_endpoints(*, session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


# --- deliveries ----------------------------------------------------------------------------------


def list_deliveries(
    *, session: Session, endpoint_id: int, query: DeliveryQuery
) -> list[tuple[WebhookDelivery, datetime | None]]:
    """Newest first, each with when its next try is due (while it is pending)."""
    get_or_404(session, WebhookEndpoint, endpoint_id)
    statement = (
        select(WebhookDelivery, Message.not_before)
        .outerjoin(Message, Message.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    )
    if query.state is not None:
        statement = statement.where(WebhookDelivery.state == query.state)
    if query.event_type is not None:
        statement = statement.where(WebhookDelivery.event_type == query.event_type)
    return [
        (delivery, not_before if delivery.state is DeliveryState.pending else None)
        for delivery, not_before in session.execute(statement)
    ]


def redeliver(*, session: Session, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again (a failed one, or a delivered one the receiver lost): a new outbox
    message with the same Pointcard-Delivery id, so a receiver that has it can drop it."""
    delivery = get_or_404(session, WebhookDelivery, delivery_id)
    if delivery.endpoint_id != endpoint_id:
        raise NotFound(f"Endpoint {endpoint_id} has no delivery {delivery_id}.")
    if delivery.state is DeliveryState.pending:
        raise Conflict("This delivery is still being tried; wait for its outcome.")
    delivery.state, delivery.delivered_at = DeliveryState.pending, None
    _queue_message(session, delivery, key=f"webhook:{delivery.uuid}:{uuid.uuid4().hex[:12]}")
    session.flush()
    return delivery


def _queue_message(session: Session, delivery: WebhookDelivery, *, key: str) -> None:
    # The message carries only the delivery's id: the secret and payload stay in webhook tables,
    # out of the outbox view staff can read, and a retry signs with the endpoint's current secret.
    delivery.message_id = enqueue(
        session=session,
        customer_id=None,
        channel=CHANNEL,
        content={"delivery_id": delivery.id},
        dedupe_key=key,
        template=delivery.event_type,
    )


# --- events --------------------------------------------------------------------------------------


@dataclass
class Event:
    type: EventType
    data: dict
    customer_id: int | None = None
    occurred_at: datetime = field(default_factory=utcnow)
    # A stable id (nightly events) makes a re-run add nothing; otherwise a fresh one.
    id: str = field(default_factory=new_uuid)


def subscribers(session: Session, types: Iterable[str]) -> dict[str, list[WebhookEndpoint]]:
    wanted = set(types)
    by_type: dict[str, list[WebhookEndpoint]] = {}
    for endpoint in session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True)).order_by(WebhookEndpoint.id)
    ):
        for event_type in wanted.intersection(endpoint.events or ()):
            by_type.setdefault(event_type, []).append(endpoint)
    return by_type


def queue_events(
    *, session: Session, events: list[Event], endpoints: dict[str, list[WebhookEndpoint]] | None = None
) -> int:
    """One delivery (and one outbox message) per event and subscribed endpoint; how many."""
    endpoints = subscribers(session, {e.type for e in events}) if endpoints is None else endpoints
    events = [e for e in events if endpoints.get(e.type)]
    if not events:
        return 0
    customers = customer_snapshots(session, {e.customer_id for e in events if e.customer_id is not None})
    seen = _existing(session, events, {e.id for targets in endpoints.values() for e in targets})
    deliveries = []
    for event in events:
        payload = _payload(event, customers.get(event.customer_id) if event.customer_id is not None else None)
        for endpoint in endpoints[event.type]:
            if (endpoint.id, event.id) in seen:
                continue
            delivery = WebhookDelivery(
                uuid=new_uuid(),
                endpoint_id=endpoint.id,
                event_id=event.id,
                event_type=str(event.type),
                customer_id=event.customer_id,
                payload=payload,
                state=DeliveryState.pending,
                attempts=0,
                created_at=utcnow(),
            )
            session.add(delivery)
            deliveries.append(delivery)
    session.flush()
    for delivery in deliveries:
        _queue_message(session, delivery, key=f"webhook:{delivery.uuid}")
    session.flush()
    return len(deliveries)


def _existing(session: Session, events: list[Event], endpoint_ids: set[int]) -> set[tuple[int, str]]:
    """(endpoint, event) pairs already delivered, for events with stable ids (fresh ones cannot be)."""
    stable = [e.id for e in events if not _is_uuid4(e.id)]
    if not stable:
        return set()
    rows = session.execute(
        select(WebhookDelivery.endpoint_id, WebhookDelivery.event_id).where(  # the unique index
            WebhookDelivery.endpoint_id.in_(sorted(endpoint_ids)), WebhookDelivery.event_id.in_(stable)
        )
    )
    return {(endpoint_id, event_id) for endpoint_id, event_id in rows}


def _is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4
    except ValueError:
        return False


def stable_event_id(*parts: object) -> str:
    """The same id for the same fact (customer 7 lapsed as of 2026-11-25), however often computed."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "pointcard:" + ":".join(str(p) for p in parts)))


def _payload(event: Event, customer: dict | None) -> dict:
    data = dict(event.data)
    if customer is not None:
        data["customer"] = customer
    return {"id": event.id, "type": str(event.type), "created_at": event.occurred_at.isoformat(), "data": data}


def customer_snapshots(session: Session, customer_ids: set[int]) -> dict[int, dict]:
    """Who an event is about, as receivers see them, in one query."""
    if not customer_ids:
        return {}
    rows = session.execute(
        select(Customer, Card.member_number, Tier.name)
        .outerjoin(Card, Card.customer_id == Customer.id)
        .outerjoin(Tier, Tier.id == Customer.tier_id)
        .where(Customer.id.in_(sorted(customer_ids)))
    )
    return {
        customer.id: {
            "id": customer.id,
            "program_id": customer.program_id,
            "member_number": member_number,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "email": customer.email,
            "phone": customer.phone,
            "points_balance": customer.points_balance,
            "tier": tier,
        }
        for customer, member_number, tier in rows
    }


def ping(*, session: Session, endpoint_id: int) -> WebhookDelivery:
    """A `ping` event to this endpoint only, whatever it subscribes to (and even if paused)."""
    endpoint = get_or_404(session, WebhookEndpoint, endpoint_id)
    event = Event(type=EventType.ping, data={"endpoint_id": endpoint.id, "message": "Pointcard webhook test"})
    queue_events(session=session, events=[event], endpoints={EventType.ping: [endpoint]})
    return session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_id == event.id)
    ).one()


# --- records of each attempt (written by the sender, in its own transaction) -----------------


def delivery_for_send(session: Session, delivery_id: int) -> tuple[WebhookDelivery, WebhookEndpoint] | None:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return None
    return delivery, delivery.endpoint


def record_attempt(
    session: Session,
    delivery_id: int,
    *,
    state: DeliveryState,
    status_code: int | None,
    response: str | None,
    error: str | None,
    duration_ms: int | None,
    at: datetime,
) -> None:
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        return
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_response = status_code, response
    delivery.last_error, delivery.last_duration_ms, delivery.last_attempt_at = error and error[:500], duration_ms, at
    if delivery.state is not DeliveryState.delivered:  # a late failure never undoes a success
        delivery.state = state
    if state is DeliveryState.delivered:
        delivery.delivered_at = delivery.delivered_at or at


def disable_endpoint(session: Session, endpoint_id: int, reason: str) -> None:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is not None and endpoint.active:
        endpoint.active, endpoint.disabled_reason, endpoint.updated_at = False, reason[:300], utcnow()


def forget_customer(*, session: Session, customer_id: int) -> int:
    """The customer asked to be erased: their past and waiting events (with their contacts) go."""
    return rowcount(session.execute(delete(WebhookDelivery).where(WebhookDelivery.customer_id == customer_id)))


def purge_deliveries(*, session: Session, now: datetime, settings: WebhooksSettings) -> int:
    cutoff = now - timedelta(days=settings.retention_days)
    return rowcount(
        session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.created_at < cutoff, WebhookDelivery.state != DeliveryState.pending
            )
        )
    )
