from __future__ import annotations

from pydantic import BaseModel


class WebhooksSettings(BaseModel):
    """Environment variables POINTCARD_WEBHOOKS__<FIELD>."""
