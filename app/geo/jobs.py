"""Geo upkeep: wallet cards refreshed after offers change, raw positions deleted after retention."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from app.db import Database, utcnow
from app.geo import wallet
from app.geo.config import GeoSettings
from app.geo.models import WalletRefresh
from app.geo.service import delete_old_pings
from app.jobs import Job, environment_settings

log = logging.getLogger(__name__)


def purge_location_pings(
    *, database: Database, now: datetime | None = None, settings: GeoSettings | None = None
) -> int:
    """Delete pings older than the retention period; returns how many."""
    settings = settings or environment_settings().geo
    with database.transaction() as session:
        deleted = delete_old_pings(session=session, now=now or utcnow(), settings=settings)
    log.info("deleted %s location pings past retention", deleted)
    return deleted


def refresh_wallet_cards(*, database: Database, settings: GeoSettings | None = None) -> int:
    """Carry every pending wallet refresh through, one committed batch of cards at a time."""
    settings = settings or environment_settings().geo
    with database.transaction() as session:
        pending = list(
            session.scalars(select(WalletRefresh.id).where(WalletRefresh.done_at.is_(None)).order_by(WalletRefresh.id))
        )
    for refresh_id in pending:
        while True:
            with database.transaction() as session:
                refresh = session.scalars(
                    select(WalletRefresh).where(WalletRefresh.id == refresh_id).with_for_update()
                ).one()
                if refresh.done_at is not None or wallet.refresh_batch(
                    session=session, refresh=refresh, size=settings.wallet_refresh_batch_size
                ):
                    break
    return len(pending)


# Hourly, so no position outlives its retention by more than an hour.
JOBS = [
    Job(
        name="geo.purge_location_pings",
        func=purge_location_pings,
        trigger="cron",
        trigger_args={"minute": 17},
        timeout_minutes=30,
    ),
    # Offer texts on the cards lag an offer change by at most this much (plus the batches).
    Job(
        name="geo.refresh_wallet_cards",
        func=refresh_wallet_cards,
        trigger="interval",
        trigger_args={"seconds": 30},
        timeout_minutes=5,
    ),
]
