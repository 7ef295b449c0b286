"""The worker loop behind `flask messaging work`: drain, send concurrently, wait when idle."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from app.db import Database
from app.messaging.config import MessagingSettings
from app.messaging.outbox import drain_once
from app.messaging.providers import Sender

log = logging.getLogger(__name__)


def run_worker(
    *,
    database: Database,
    senders: dict[str, Sender],
    settings: MessagingSettings,
    once: bool = False,
    stop: threading.Event | None = None,
) -> int:
    """Drain until stopped (or, with `once`, until nothing is due). Returns how many rows it handled."""
    stop = stop or threading.Event()
    total = 0
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="send") as pool:
        while not stop.is_set():
            handled = drain_once(database=database, senders=senders, settings=settings, executor=pool)
            total += handled
            if not handled:
                if once:
                    break
                stop.wait(settings.idle_seconds)
    return total
