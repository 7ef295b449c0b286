"""Scheduled work: the nightly scoring (with sequence enrolment) and the tick that sends what is due.

Each program is scored in its own transaction, each batch of a send in its own, so a crash
loses at most one batch and the next run carries on. Both jobs take `now` and the settings,
so tests drive them with a clock of their own.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.campaigns import reengagement, service
from app.campaigns.config import CampaignSettings
from app.campaigns.models import Campaign, ScoringRun
from app.db import Database, utcnow
from app.errors import Problem
from app.jobs import Job
from app.loyalty.models import Program

log = logging.getLogger(__name__)


def _due_for_scoring(session, program: Program, now: datetime, settings: CampaignSettings) -> bool:
    local = now.astimezone(ZoneInfo(program.timezone))
    if local.hour < settings.score_hour:
        return False
    return (
        session.scalar(
            select(ScoringRun.id).where(
                ScoringRun.program_id == program.id,
                ScoringRun.as_of == local.date(),
                ScoringRun.finished_at.is_not(None),
            )
        )
        is None
    )


def score_customers(
    *, database: Database, now: datetime | None = None, settings: CampaignSettings | None = None, force: bool = False
) -> int:
    """Score every program whose night it is (once per local day; `force`: all, now); returns how many."""
    now, settings = now or utcnow(), settings or CampaignSettings()
    with database.transaction() as session:
        programs = list(session.scalars(select(Program).order_by(Program.id)))
        due = [p.id for p in programs if force or _due_for_scoring(session, p, now, settings)]
    for program_id in due:
        with database.transaction() as session:
            service.score_program(
                session=session, program=session.get_one(Program, program_id), now=now, settings=settings
            )
        enroll_lapsing(database=database, program_id=program_id, now=now, settings=settings)
    return len(due)


def enroll_lapsing(*, database: Database, program_id: int, now: datetime, settings: CampaignSettings) -> int:
    with database.transaction() as session:
        campaign_ids = [c.id for c in reengagement.live_sequences(session=session, program_id=program_id)]
    enrolled = 0
    for campaign_id in campaign_ids:
        while True:
            with database.transaction() as session:
                added = reengagement.enroll_lapsing(
                    session=session,
                    campaign=session.get_one(Campaign, campaign_id),
                    now=now,
                    cooldown_days=settings.reengagement_cooldown_days,
                    limit=settings.batch_size,
                )
            enrolled += added
            if added < settings.batch_size:
                break
    if enrolled:
        log.info("program %s: %s lapsing customers enrolled in re-engagement", program_id, enrolled)
    return enrolled


def tick(*, database: Database, now: datetime | None = None, settings: CampaignSettings | None = None) -> dict:
    """Start due campaign sends, expand open sends batch by batch, send due sequence steps."""
    now, settings = now or utcnow(), settings or CampaignSettings()
    with database.transaction() as session:
        started = service.start_due_runs(session=session, now=now)
        runs = service.open_runs(session=session)
    for run_id in runs:
        _send_run(database, run_id, now, settings)
    steps = 0
    while True:
        with database.transaction() as session:
            handled = reengagement.run_due_steps(session=session, now=now, limit=settings.batch_size)
        steps += handled
        if handled < settings.batch_size:
            break
    return {"started": len(started), "runs": len(runs), "steps": steps}


def _send_run(database: Database, run_id: int, now: datetime, settings: CampaignSettings) -> None:
    try:
        while True:
            with database.transaction() as session:
                if service.send_run_batch(session=session, run_id=run_id, now=now, settings=settings):
                    return
    except Problem as problem:  # the campaign's own fault: pause it, let the others go on
        with database.transaction() as session:
            service.pause_run_that_cannot_go_on(session=session, run_id=run_id, reason=problem.detail, now=now)


JOBS = [
    # Hourly: each program is scored once a night, from score_hour in its own time zone.
    Job(
        name="campaigns.score",
        func=score_customers,
        trigger="cron",
        trigger_args={"minute": 20},
        timeout_minutes=60,
        settings="campaigns",
    ),
    Job(
        name="campaigns.tick",
        func=tick,
        trigger="interval",
        trigger_args=lambda settings: {"seconds": settings.campaigns.tick_seconds},
        timeout_minutes=5,
        settings="campaigns",
    ),
]
