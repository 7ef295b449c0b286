from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from app.schemas import Input, Output, Page
from app.webhooks.models import SUBSCRIBABLE, DeliveryState

if TYPE_CHECKING:
    Subscribable = str
else:  # the events an endpoint may subscribe to, as the enum the OpenAPI document shows
    Subscribable = Literal[tuple(str(t) for t in SUBSCRIBABLE)]


def _distinct(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Events = Annotated[list[Subscribable], Field(min_length=1), AfterValidator(_distinct)]


class EndpointCreate(Input):
    url: str = Field(min_length=8, max_length=2048, description="https:// URL the events are POSTed to.")
    description: str = Field(default="", max_length=300)
    events: Events
    active: bool = True


class EndpointUpdate(Input):
    url: str | None = Field(default=None, min_length=8, max_length=2048)
    description: str | None = Field(default=None, max_length=300)
    events: Events | None = None
    active: bool | None = None


class EndpointRead(Output):
    id: int
    url: str
    description: str
    events: list[str]
    active: bool
    disabled_reason: str | None
    secret_hint: str = Field(description="The secret's last four characters, to tell secrets apart.")
    previous_secret_until: datetime | None = Field(
        description="Until then the secret before the last rotation also signs every delivery."
    )
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointRead):
    secret: str = Field(description="Signs every delivery; shown only when created or rotated.")


class SecretRotation(Input):
    old_secret_hours: float = Field(
        default=24, ge=0, le=168, description="How long the old secret still signs (a second v1); 0: not at all."
    )


class DeliveryQuery(Page):
    state: DeliveryState | None = None
    event_type: str | None = Field(default=None, max_length=40, description="customer.enrolled, points.changed...")


class DeliveryRead(BaseModel):
    id: int
    uuid: str = Field(description="Sent as Pointcard-Delivery; the same on every retry.")
    event_id: str
    event_type: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_response: str | None = Field(description="The start of the receiver's last answer.")
    last_error: str | None
    last_duration_ms: int | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict
