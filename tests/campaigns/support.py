"""What the campaign tests share with the others that need an audience or a campaign: customers
enrolled long ago with a visit history, and a campaign body."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, update

from app.campaigns.config import CampaignSettings
from app.db import utcnow
from app.loyalty.models import Customer, Purchase

SETTINGS = CampaignSettings(model_min_customers=10_000, batch_size=2)
ALL_CONSENTS = {"sms": True, "push": True, "voice": True}


def backdate(world, customer_id: int, *, enrolled_days_ago: int, visits_days_ago: list[int], now: datetime) -> None:
    """Make a customer enrolled long ago, with purchases on the given days (before `now`)."""
    with world.database.transaction() as session:
        session.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(created_at=now - timedelta(days=enrolled_days_ago))
        )
        if visits_days_ago:
            session.execute(
                insert(Purchase),
                [
                    {
                        "customer_id": customer_id,
                        "amount": Decimal("5.00"),
                        "currency": "USD",
                        "points_earned": 0,
                        "refunded_amount": Decimal(0),
                        "points_reversed": 0,
                        "created_at": now - timedelta(days=days),
                    }
                    for days in visits_days_ago
                ],
            )


def broadcast(**overrides) -> dict:
    return {
        "name": "Spring",
        "rules": {"field": "points", "op": "gte", "value": 0},
        "channels": ["wallet", "push", "sms"],
        "templates": {
            "wallet": {"title": "Spring", "body": "Hi {{ first_name }}"},
            "push": "Hi {{ first_name }}, {{ bonus_points }} points for you",
            "sms": "Hi {{ first_name }}, {{ bonus_points }} points for you",
        },
        "send_at": (utcnow() + timedelta(hours=2)).isoformat(),
        **overrides,
    }
