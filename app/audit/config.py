from __future__ import annotations

from pydantic import BaseModel


class AuditSettings(BaseModel):
    """Environment variables POINTCARD_AUDIT__<FIELD>."""
