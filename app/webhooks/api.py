"""HTTP API of the webhooks package: endpoints and their deliveries, for admins only."""

from __future__ import annotations

from flask import Blueprint

from app.api import current_user_id, endpoint
from app.crud import get_or_404
from app.extensions import get_session, get_settings
from app.roles import Role
from app.webhooks import service
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.schemas import (
    DeliveryQuery,
    DeliveryRead,
    EndpointCreate,
    EndpointRead,
    EndpointUpdate,
    EndpointWithSecret,
    SecretRotation,
)

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1")

ADMIN = [Role.admin]


def _read(endpoint_: WebhookEndpoint, *, with_secret: bool = False) -> EndpointRead:
    fields = {
        "id": endpoint_.id,
        "url": endpoint_.url,
        "description": endpoint_.description,
        "events": endpoint_.events,
        "active": endpoint_.active,
        "disabled_reason": endpoint_.disabled_reason,
        "secret_hint": endpoint_.secret[-4:],
        "created_at": endpoint_.created_at,
        "previous_secret_until": endpoint_.previous_secret_until if endpoint_.previous_secret else None,
        "updated_at": endpoint_.updated_at,
    }
    return EndpointWithSecret(**fields, secret=endpoint_.secret) if with_secret else EndpointRead(**fields)


def _delivery_read(delivery: WebhookDelivery, next_attempt_at=None) -> DeliveryRead:
    return DeliveryRead(
        id=delivery.id,
        uuid=delivery.uuid,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        state=delivery.state,
        attempts=delivery.attempts,
        next_attempt_at=next_attempt_at,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        last_response=delivery.last_response,
        last_error=delivery.last_error,
        last_duration_ms=delivery.last_duration_ms,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
        payload=delivery.payload,
    )


@bp.get("/webhooks")
@endpoint(roles=ADMIN, response=list[EndpointRead], tags=["webhooks"])
def list_endpoints():
    """Every webhook endpoint (secrets are not shown, only their last four characters).

    Admins only. Paused endpoints are listed too: `active` is false, and `disabled_reason` says so
    when the service itself stopped one (the receiver answered 410 Gone).
    """
    return [_read(e) for e in service.list_endpoints(session=get_session())]


@bp.post("/webhooks")
@endpoint(roles=ADMIN, body=EndpointCreate, response=EndpointWithSecret, status=201, tags=["webhooks"], errors=[422])
def create_endpoint(body: EndpointCreate):
    """Register an https endpoint for some events. The answer holds its signing secret, shown only now.

    Admins only. The URL must be https and resolve to public addresses only (422 otherwise), since
    the deliveries come from inside the service's network; it is checked again before every send.
    Each delivery is a POST signed in its Pointcard-Signature header with the secret, which the
    receiver checks: keep the secret, because it cannot be read again, only rotated.
    """
    created = service.create_endpoint(
        session=get_session(), body=body, settings=get_settings().webhooks, created_by_id=current_user_id()
    )
    return _read(created, with_secret=True)


@bp.get("/webhooks/<int:endpoint_id>")
@endpoint(roles=ADMIN, response=EndpointRead, tags=["webhooks"], errors=[404])
def get_endpoint(endpoint_id: int):
    """One webhook endpoint, without its secret (admin only).

    404 when there is no such endpoint. `previous_secret_until` says until when a rotated-out secret
    still signs.
    """
    return _read(get_or_404(get_session(), WebhookEndpoint, endpoint_id))


@bp.patch("/webhooks/<int:endpoint_id>")
@endpoint(roles=ADMIN, body=EndpointUpdate, response=EndpointRead, tags=["webhooks"], errors=[404, 422])
def update_endpoint(endpoint_id: int, body: EndpointUpdate):
    """Change the URL, events or description, or pause (active: false) and resume it.

    Admins only. Only the fields sent change; a new URL is checked like a new endpoint's (422).
    Resuming clears `disabled_reason`. While paused, events are not queued for it, but a test ping
    still is.
    """
    return _read(
        service.update_endpoint(
            session=get_session(), endpoint_id=endpoint_id, body=body, settings=get_settings().webhooks
        )
    )


@bp.delete("/webhooks/<int:endpoint_id>")
@endpoint(roles=ADMIN, tags=["webhooks"], errors=[404])
def delete_endpoint(endpoint_id: int):
    """Remove the endpoint and its delivery records; deliveries still waiting are dropped.

    Admins only. To stop deliveries for a while and keep the history, pause the endpoint instead.
    """
    service.delete_endpoint(session=get_session(), endpoint_id=endpoint_id)


@bp.post("/webhooks/<int:endpoint_id>/rotate-secret")
@endpoint(roles=ADMIN, body=SecretRotation, response=EndpointWithSecret, tags=["webhooks"], errors=[404])
def rotate_secret(endpoint_id: int, body: SecretRotation):
    """Rotate the signing secret: the new one is in the answer, shown only now.

    Admins only. The old secret keeps signing too (a second `v1` in Pointcard-Signature) for
    `old_secret_hours` (default 24; 0 stops it at once), so the receiver can switch over without
    refusing a delivery in between.
    """
    rotated = service.rotate_secret(
        session=get_session(), endpoint_id=endpoint_id, old_secret_hours=body.old_secret_hours
    )
    return _read(rotated, with_secret=True)


@bp.post("/webhooks/<int:endpoint_id>/test")
@endpoint(roles=ADMIN, response=DeliveryRead, status=202, tags=["webhooks"], errors=[404])
def test_endpoint(endpoint_id: int):
    """Queue a `ping` event to this endpoint; follow it in its deliveries.

    Admins only. Sent whatever events the endpoint subscribes to, even while it is paused, so a
    receiver can be checked before it is switched on. The answer (202) is the queued delivery; the
    attempt happens after the request.
    """
    return _delivery_read(service.ping(session=get_session(), endpoint_id=endpoint_id))


@bp.get("/webhooks/<int:endpoint_id>/deliveries")
@endpoint(roles=ADMIN, query=DeliveryQuery, response=list[DeliveryRead], tags=["webhooks"], errors=[404])
def list_deliveries(endpoint_id: int, query: DeliveryQuery):
    """The endpoint's deliveries, newest first, each with the receiver's last answer.

    Admins only. Filter by `state` (pending, delivered, failed) or `event_type`; a pending delivery
    says when its next try is due. Each delivery keeps its payload, the status, the start of the
    body and the time of the receiver's last answer, for a number of days set on the server (30 by
    default).
    """
    rows = service.list_deliveries(session=get_session(), endpoint_id=endpoint_id, query=query)
    return [_delivery_read(delivery, next_at) for delivery, next_at in rows]


@bp.post("/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/retry")
@endpoint(roles=ADMIN, response=DeliveryRead, status=202, tags=["webhooks"], errors=[404, 409])
def retry_delivery(endpoint_id: int, delivery_id: int):
    """Send a finished delivery again (same Pointcard-Delivery id, so receivers can drop repeats).

    Admins only. For a failed delivery, or a delivered one the receiver lost; one still being tried
    is a 409. 404 when the delivery is not this endpoint's. The answer (202) is the delivery, pending
    again.
    """
    return _delivery_read(service.redeliver(session=get_session(), endpoint_id=endpoint_id, delivery_id=delivery_id))
