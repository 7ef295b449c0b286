from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from app.messaging.models import MessageState
from app.schemas import FilePart, Input, Output, Page


def _b64url_bytes(length: int, first: int | None = None):
    def check(value: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not base64url") from exc
        if len(raw) != length or (first is not None and raw[0] != first):
            raise ValueError(f"expected {length} bytes of key material")
        return value

    return AfterValidator(check)


class PushKeys(BaseModel):
    # An uncompressed P-256 point and the 16-byte auth secret, as PushSubscription.toJSON() gives them.
    p256dh: Annotated[str, _b64url_bytes(65, first=4)]
    auth: Annotated[str, _b64url_bytes(16)]


class PushSubscriptionCreate(Input):
    endpoint: str = Field(min_length=8, max_length=2048)
    keys: PushKeys
    expirationTime: int | None = None
    # The text shown when the customer turned notifications on: recorded as their push opt-in.
    disclosure: str | None = Field(default=None, max_length=2000)


class PushSubscriptionRead(Output):
    id: int
    endpoint: str
    created_at: datetime


class PushSubscriptionQuery(Input):
    endpoint: str = Field(min_length=8, max_length=2048)


class VoiceRecordingUpload(BaseModel):
    """The parts of a voice-recording upload (multipart/form-data); other parts are ignored."""

    file: FilePart = Field(description="The audio a voicemail drop plays: MP3, WAV or Ogg, not empty.")
    title: str = Field(default="", description="A name to find it by; only its first 120 characters are kept.")


class VapidKeyRead(BaseModel):
    public_key: str = Field(description="applicationServerKey for PushManager.subscribe (base64url).")


class MessageQuery(Page):
    customer_id: int | None = None
    state: MessageState | None = None
    channel: str | None = Field(default=None, max_length=32)


class MessageRead(Output):
    id: int
    customer_id: int | None
    channel: str
    template: str
    content: dict
    marketing: bool
    state: MessageState
    reason: str | None
    error: str | None
    attempts: int
    provider_id: str | None
    not_before: datetime
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


class VoiceRecordingRead(Output):
    id: int
    title: str
    content_type: str
    url: str
    size: int
