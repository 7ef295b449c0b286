"""The bodies Google posts to the callback URL (field names are Google's)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class IntermediateSigningKey(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    signed_key: str = Field(alias="signedKey", min_length=1)
    signatures: list[str] = Field(min_length=1, max_length=10)


class CallbackRequest(BaseModel):
    """An ECv2SigningOnly sealed message: exactly these four fields, as Tink requires."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    signature: str = Field(min_length=1)
    intermediate_signing_key: IntermediateSigningKey = Field(alias="intermediateSigningKey")
    protocol_version: str = Field(alias="protocolVersion")
    signed_message: str = Field(alias="signedMessage", min_length=1, max_length=10_000)


class SignedMessage(BaseModel):
    """What Google tells us: an object of a class was saved to or deleted from a wallet."""

    model_config = ConfigDict(populate_by_name=True)

    class_id: str = Field(alias="classId")
    object_id: str = Field(alias="objectId")
    event_type: Literal["save", "del"] = Field(alias="eventType")
    exp_time_millis: int = Field(alias="expTimeMillis")
    count: int | None = None
    nonce: str = Field(min_length=1, max_length=200)
