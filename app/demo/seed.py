"""What `flask demo seed` creates."""

from __future__ import annotations

import secrets
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.service import create_user
from app.loyalty.models import BarcodeFormat, Program, Reward, RewardKind, Rounding, Store, Tier
from app.roles import Role

DEMO_SLUG = "demo"
DEMO_STORES = [
    ("Pointcard Coffee, Pearl District", "1205 NW Glisan St, Portland, OR", 45.5265, -122.6842),
    ("Pointcard Coffee, Hawthorne", "3530 SE Hawthorne Blvd, Portland, OR", 45.5121, -122.6271),
    ("Pointcard Coffee, Alberta", "1640 NE Alberta St, Portland, OR", 45.5590, -122.6489),
]
DEMO_TIERS = [
    ("Bronze", 0, "1", []),
    ("Silver", 500, "1.25", ["Free size upgrade"]),
    ("Gold", 1500, "1.5", ["Free size upgrade", "Birthday drink"]),
]


def seed_demo(*, session: Session, password_cost: int) -> dict[str, str] | None:
    """The demo program with its stores, tiers, rewards and three staff logins; the logins'
    passwords, or None when the demo program exists already (nothing is changed then)."""
    if session.scalar(select(Program).where(Program.slug == DEMO_SLUG)):
        return None
    program = Program(
        name="Pointcard Coffee",
        slug=DEMO_SLUG,
        currency="USD",
        points_per_unit=Decimal(10),
        rounding=Rounding.floor,
        expiry_months=12,
        tier_window_days=365,
        signup_bonus=50,
        referrer_bonus=100,
        referee_bonus=50,
        timezone="America/Los_Angeles",
        barcode_format=BarcodeFormat.qr,
    )
    session.add(program)
    session.flush()
    stores = [
        Store(program_id=program.id, name=n, address=a, latitude=lat, longitude=lon, timezone="America/Los_Angeles")
        for n, a, lat, lon in DEMO_STORES
    ]
    tiers = [
        Tier(program_id=program.id, name=n, threshold=t, multiplier=Decimal(m), benefits=b) for n, t, m, b in DEMO_TIERS
    ]
    session.add_all([*stores, *tiers])
    session.flush()
    session.add_all(
        [
            Reward(program_id=program.id, name="$5 off", kind=RewardKind.discount, points_cost=500, value=Decimal(5)),
            Reward(program_id=program.id, name="Free drip coffee", kind=RewardKind.free_item, points_cost=300),
            Reward(
                program_id=program.id,
                name="$25 gift card",
                kind=RewardKind.gift_card,
                points_cost=2500,
                value=Decimal(25),
                stock=100,
            ),
            Reward(
                program_id=program.id,
                name="Donate $5 to the food bank",
                kind=RewardKind.charity_donation,
                points_cost=450,
                value=Decimal(5),
                charity_name="Oregon Food Bank",
            ),
            Reward(
                program_id=program.id,
                name="Gold for 90 days",
                kind=RewardKind.tier_upgrade,
                points_cost=3000,
                tier_id=tiers[-1].id,
                tier_days=90,
            ),
        ]
    )
    passwords = {}
    for role, email, store in (
        (Role.admin, "admin@example.com", None),
        (Role.marketer, "marketer@example.com", None),
        (Role.cashier, "cashier@example.com", stores[0].id),
    ):
        passwords[email] = secrets.token_urlsafe(12)
        create_user(
            session=session,
            email=email,
            password=passwords[email],
            role=role,
            store_id=store,
            password_cost=password_cost,
        )
    return passwords
