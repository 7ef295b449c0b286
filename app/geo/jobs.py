"""Geo upkeep: raw positions deleted after their retention period."""

from __future__ import annotations

import logging
from datetime import datetime

from app.db import Database, utcnow
from app.geo.config import GeoSettings
from app.geo.service import delete_old_pings
from app.jobs import Job

log = logging.getLogger(__name__)


def purge_location_pings(
    *, database: Database, now: datetime | None = None, settings: GeoSettings | None = None
) -> int:
    """Delete pings older than the retention period; returns how many."""
    settings = settings or GeoSettings()
    with database.transaction() as session:
        deleted = delete_old_pings(session=session, now=now or utcnow(), settings=settings)
    log.info("deleted %s location pings past retention", deleted)
    return deleted


# Hourly, so no position outlives its retention by more than an hour.
JOBS = [
    Job(
        name="geo.purge_location_pings",
        func=purge_location_pings,
        trigger="cron",
        trigger_args={"minute": 17},
        timeout_minutes=30,
        settings="geo",
    ),
]
