"""Scheduled jobs of the webhooks package: delivery records are kept for a while, then deleted."""

from __future__ import annotations

import logging
from datetime import datetime

from app.db import Database, utcnow
from app.jobs import Job
from app.webhooks.config import WebhooksSettings
from app.webhooks.service import purge_deliveries

log = logging.getLogger(__name__)


def purge_old_deliveries(
    *, database: Database, now: datetime | None = None, settings: WebhooksSettings | None = None
) -> int:
    """Delete finished deliveries (their payloads hold customer data) past the retention period."""
    settings = settings or WebhooksSettings()
    with database.transaction() as session:
        deleted = purge_deliveries(session=session, now=now or utcnow(), settings=settings)
    log.info("deleted %s webhook deliveries past retention", deleted)
    return deleted


JOBS: list[Job] = [
    Job(
        name="webhooks.purge_old_deliveries",
        func=purge_old_deliveries,
        trigger="cron",
        trigger_args={"hour": 4, "minute": 41},
        timeout_minutes=60,
        settings="webhooks",
    )
]
