from __future__ import annotations

from datetime import datetime
from typing import Any

from app.schemas import Output

Rows = list[dict[str, Any]]


class DataExport(Output):
    """Everything stored about one customer, table by table; security tokens left out."""

    exported_at: datetime
    profile: dict[str, Any]
    consents: Rows
    ledger: Rows
    purchases: Rows
    redemptions: Rows
    referrals: Rows
    messages: Rows
    locations: Rows
    offers_received: Rows
    push_subscriptions: Rows
    wallets: dict[str, Any]
    marketing: dict[str, Rows]
