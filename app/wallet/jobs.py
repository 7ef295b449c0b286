"""Wallet upkeep: cards refreshed, in committed batches, after a program's offers change."""

from __future__ import annotations

from sqlalchemy import select

from app.db import Database
from app.geo.config import GeoSettings
from app.jobs import Job
from app.wallet import refresh
from app.wallet.models import WalletRefresh


def refresh_wallet_cards(*, database: Database, settings: GeoSettings | None = None) -> int:
    """Carry every pending wallet refresh through, one committed batch of cards at a time."""
    settings = settings or GeoSettings()
    with database.transaction() as session:
        pending = list(
            session.scalars(select(WalletRefresh.id).where(WalletRefresh.done_at.is_(None)).order_by(WalletRefresh.id))
        )
    for refresh_id in pending:
        while True:
            with database.transaction() as session:
                row = session.scalars(
                    select(WalletRefresh).where(WalletRefresh.id == refresh_id).with_for_update()
                ).one()
                if row.done_at is not None or refresh.refresh_batch(
                    session=session, refresh=row, size=settings.wallet_refresh_batch_size
                ):
                    break
    return len(pending)


JOBS = [
    # Offer texts on the cards lag an offer change by at most this much (plus the batches).
    Job(
        name="wallet.refresh_cards",
        func=refresh_wallet_cards,
        trigger="interval",
        trigger_args={"seconds": 30},
        timeout_minutes=5,
        settings="geo",
    ),
]
