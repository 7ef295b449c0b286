from __future__ import annotations

from pydantic import BaseModel


class PrivacySettings(BaseModel):
    """Environment variables POINTCARD_PRIVACY__<FIELD>."""
