"""The scheduler process: every domain's jobs on one APScheduler with its store in the database.

Exactly one scheduler is active per deployment. On PostgreSQL it holds an advisory lock for
its whole life; a second scheduler blocks on that lock as a hot standby and takes over the
moment the first one's connection goes away. The lock lives exactly as long as that connection,
so the active scheduler checks it before every run and every few seconds: when it is gone
(database restart, a proxy or the server cutting the session), the standby may already lead,
so this process runs nothing more and exits, to be restarted as a standby.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from app.db import Database
from app.wiring import Services

log = logging.getLogger(__name__)

_ADVISORY_LOCK_ID = 0x504F494E54  # "POINT"
# How often the active scheduler checks that it still holds the lock, between runs.
LEADERSHIP_CHECK_SECONDS = 2.0
# The application of the scheduler running in this process. Stored jobs name only the job, so
# neither code paths nor connection URLs (with their passwords) end up pickled in the table.
_services: Services | None = None
_leadership: Leadership | None = None


class LostLeadership(RuntimeError):
    pass


class Leadership:
    """The connection that holds the advisory lock; `held()` asks PostgreSQL whether it still does."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._guard = threading.Lock()  # one connection, used from the job threads and the main one
        self.lost = threading.Event()

    def held(self) -> bool:
        with self._guard:
            if self.lost.is_set():
                return False
            try:
                held = (
                    self.connection.execute(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                            "AND granted AND classid = :hi AND objid = :lo"
                        ),
                        {"hi": _ADVISORY_LOCK_ID >> 32, "lo": _ADVISORY_LOCK_ID & 0xFFFFFFFF},
                    ).scalar()
                    == 1
                )
                self.connection.commit()
            except SQLAlchemyError as exc:
                log.error("the scheduler lock's connection failed: %s", exc)
                held = False
            if not held:
                self.lost.set()
            return held

    def close(self) -> None:
        with self._guard, contextlib.suppress(SQLAlchemyError):  # already gone: so is the lock
            self.connection.close()


def run_job(name: str) -> None:
    """What APScheduler stores and calls."""
    assert _services is not None, "build_scheduler() first"
    job = next(job for job in _services.jobs if job.name == name)
    if _leadership is not None and not _leadership.held():
        raise LostLeadership(f"job {name} not run: this process no longer holds the scheduler lock")
    log.info("job %s starting", name)
    job.run(_services)


def _log_submitted(event: JobSubmissionEvent) -> None:
    """One line per run as it starts, with its due time: a run cut off by a crash shows here and
    nowhere else, so a standby that ran the same due time again would show it twice."""
    for due in event.scheduled_run_times:
        log.info("job %s submitted (due at %s)", event.job_id, due.isoformat())


def _log_outcome(event: JobExecutionEvent) -> None:
    """One line per run with the time it was due: the record that each due run happened once."""
    due = event.scheduled_run_time.isoformat()
    if event.exception is not None:
        log.error("job %s due at %s failed: %s", event.job_id, due, event.exception)
    else:
        log.info("job %s done (due at %s)", event.job_id, due)


def build_scheduler(services: Services) -> BackgroundScheduler:
    global _services
    _services = services
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=services.database.engine)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone="UTC",
    )
    for job in services.jobs:
        scheduler.add_job(
            run_job,
            trigger=job.trigger,
            args=[job.name],
            id=job.name,
            name=job.name,
            replace_existing=True,
            misfire_grace_time=job.timeout_minutes * 60,
            **job.trigger_kwargs(services.settings),
        )
    scheduler.add_listener(_log_outcome, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.add_listener(_log_submitted, EVENT_JOB_SUBMITTED)
    return scheduler


def hold_leadership(database: Database) -> Leadership | None:
    """On PostgreSQL, block until this process is the one active scheduler; return what holds the
    lock (keep it open). SQLite deployments are single-node: nothing to hold."""
    if not database.is_postgres:
        return None
    connection = database.engine.connect()
    log.info("waiting to become the active scheduler")
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
    connection.commit()
    log.info("this process is now the active scheduler")
    return Leadership(connection)


def forget_retired_jobs(scheduler: BackgroundScheduler, services: Services) -> list[str]:
    """Drop stored jobs the code no longer has (a renamed job would otherwise fail every run)."""
    current = {job.name for job in services.jobs}
    retired = [job.id for job in scheduler.get_jobs() if job.id not in current]
    for job_id in retired:
        scheduler.remove_job(job_id)
        log.info("job %s is no longer in the code: removed from the job store", job_id)
    return retired


def run_forever(services: Services, stop: threading.Event) -> bool:
    """Lead (or wait to), run the jobs until `stop`; False when the lock was lost instead."""
    global _leadership
    leadership = _leadership = hold_leadership(services.database)
    scheduler = build_scheduler(services)
    scheduler.start()
    forget_retired_jobs(scheduler, services)
    try:
        while not stop.wait(LEADERSHIP_CHECK_SECONDS):
            if leadership is not None and not leadership.held():
                log.error("this process lost the scheduler lock: it runs nothing more and exits")
                return False
        return True
    finally:
        scheduler.shutdown(wait=leadership is None or not leadership.lost.is_set())
        if leadership is not None:
            leadership.close()
