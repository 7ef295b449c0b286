"""Scheduled jobs of the privacy package: personal data is not kept past its use.

Raw location pings have their own purge beside the geo code that writes them
(`geo.purge_location_pings`, hourly, `POINTCARD_GEO__PING_RETENTION_*`); this package blanks
the rendered bodies of old messages.
"""

from __future__ import annotations

import logging
from datetime import datetime

from app.db import Database, utcnow
from app.jobs import Job
from app.privacy.config import PrivacySettings
from app.privacy.service import blank_old_message_bodies

log = logging.getLogger(__name__)


def purge_message_bodies(
    *, database: Database, now: datetime | None = None, settings: PrivacySettings | None = None
) -> int:
    """Blank the bodies of finished messages past the retention period; returns how many."""
    settings = settings or PrivacySettings()
    with database.transaction() as session:
        blanked = blank_old_message_bodies(
            session=session, now=now or utcnow(), days=settings.message_body_retention_days
        )
    log.info("blanked %s message bodies past retention", blanked)
    return blanked


JOBS: list[Job] = [
    Job(
        name="privacy.purge_message_bodies",
        func=purge_message_bodies,
        trigger="cron",
        trigger_args={"hour": 3, "minute": 41},
        timeout_minutes=120,
        settings="privacy",
    )
]
