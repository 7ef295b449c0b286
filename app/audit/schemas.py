from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from app.schemas import Output, Page


class AuditQuery(Page):
    actor_id: int | None = None
    action: str | None = Field(default=None, max_length=80, description="Exact, or a prefix ending in '.': 'reward.'")
    entity_type: str | None = Field(default=None, max_length=64)
    entity_id: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=36)
    since: AwareDatetime | None = Field(default=None, description="Inclusive, with a time zone.")
    until: AwareDatetime | None = Field(default=None, description="Exclusive, with a time zone.")


class AuditRecordRead(Output):
    id: int
    at: datetime
    actor_id: int | None
    actor_email: str | None
    actor_role: str | None
    ip_address: str | None
    user_agent: str | None
    method: str | None
    path: str | None
    endpoint: str | None
    request_id: str | None
    action: str
    entity_type: str
    entity_id: str | None
    changes: dict[str, Any] | None = Field(
        description="{column: [before, after]}; secrets and contact data read '[redacted]'."
    )
    details: dict[str, Any] | None
