from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DeviceRegistration(BaseModel):
    """Body of Apple's "register a pass for update notifications"."""

    model_config = ConfigDict(extra="ignore")

    pushToken: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9]+$")


class DeviceLog(BaseModel):
    """Body of Apple's log endpoint: messages a device had trouble with our web service."""

    model_config = ConfigDict(extra="ignore")

    logs: list[str] = Field(default_factory=list, max_length=100)
