from __future__ import annotations

from pydantic import BaseModel, Field


class AuditSettings(BaseModel):
    """Environment variables POINTCARD_AUDIT__<FIELD> (lists and dicts as JSON)."""

    # Routine till operations are recorded by the ledger itself (entries name the cashier,
    # store and purchase); auditing them row by row would double the writes at the till.
    skip_endpoints: list[str] = Field(
        default_factory=lambda: [
            "pos.scan",
            "pos.create_purchase",
            "pos.create_redemption",
        ]
    )
    # Derived or housekeeping rows that follow from a change already recorded elsewhere
    # (the outbox, point lots behind ledger entries, fence boxes behind an offer, wallet sync).
    ignored_tables: list[str] = Field(
        default_factory=lambda: [
            "idempotency_keys",
            "messages",
            "point_lots",
            "geo_fences",
            "apple_passes",
            "google_wallet_objects",
            "google_wallet_notifications",
            "google_wallet_classes",
            "webhook_deliveries",
        ]
    )
    # GET endpoints that hand data out in bulk: each call is recorded as "<entity>.export".
    exports: dict[str, str] = Field(
        default_factory=lambda: {
            "campaigns.campaign_results": "campaign",
            "campaigns.campaign_enrollments": "campaign",
        }
    )
