"""Segments and campaigns: create, schedule, pause, resume, cancel, and expand due sends into the outbox.

A campaign's schedule lives in its own row (`next_run_at`), not in the scheduler's job store:
the scheduler's `campaigns.tick` job finds due campaigns in the database. A schedule made or
changed through the API is therefore seen by the next tick of whichever scheduler is active,
survives restarts, and a due time becomes a `campaign_runs` row once (unique per campaign and
time, taken under the campaign's row lock).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.campaigns import delivery, scoring
from app.campaigns.config import CampaignSettings
from app.campaigns.models import (
    Campaign,
    CampaignKind,
    CampaignRun,
    CampaignState,
    CampaignTarget,
    CustomerScore,
    Enrollment,
    EnrollmentState,
    RunState,
    ScoringRun,
    Segment,
)
from app.campaigns.segments import latest_scoring, segment_query, validate
from app.crud import reject_nulls
from app.errors import Conflict, NotFound, Unprocessable
from app.loyalty.models import Card, Customer, Program, Reward, Tier
from app.messaging.content import customers_fields

log = logging.getLogger(__name__)
SAMPLE_SIZE = 10
# The sequence the issue describes; a re-engagement campaign created without steps gets it.
DEFAULT_STEPS = [
    {
        "day": 0,
        "channels": ["wallet", "push"],
        "bonus_points": 0,
        "templates": {
            "wallet": {"title": "We miss you", "body": "Hi {{ first_name }}, your next coffee is waiting."},
            "push": {"title": "We miss you", "body": "Hi {{ first_name }}, your next coffee is waiting."},
        },
    },
    {
        "day": 3,
        "channels": ["sms"],
        "bonus_points": 100,
        "templates": {
            "sms": {
                "body": "{{ first_name }}, we added {{ bonus_points }} points to your {{ program }} card. See you soon!"
            }
        },
    },
    {
        "day": 10,
        "channels": ["voice"],
        "bonus_points": 0,
        "templates": {
            "voice": {
                "body": "Hello {{ first_name }}, this is {{ program }}. You have {{ points }} points "
                "waiting for you. We hope to see you soon."
            }
        },
    },
]


class CampaignStateConflict(Conflict):
    slug, title = "campaign-state", "Not possible in this campaign state"


# --- segments --------------------------------------------------------------------------------


def create_segment(*, session: Session, program: Program, name: str, rules: dict, now: datetime) -> Segment:
    validate(session=session, program=program, rules=rules, now=now)
    segment = Segment(program_id=program.id, name=name, rules=rules, created_at=now, updated_at=now)
    session.add(segment)
    session.flush()
    return segment


def update_segment(*, session: Session, segment: Segment, program: Program, changes: dict, now: datetime) -> Segment:
    reject_nulls(segment, changes)
    if "rules" in changes:
        validate(session=session, program=program, rules=changes["rules"], now=now)
    for name, value in changes.items():
        setattr(segment, name, value)
    segment.updated_at = now
    session.flush()
    return segment


def delete_segment(*, session: Session, segment: Segment) -> None:
    used = session.scalar(select(func.count(Campaign.id)).where(Campaign.segment_id == segment.id))
    if used:
        raise Conflict(f"Segment {segment.id} is used by {used} campaign(s); it cannot be deleted.")
    session.delete(segment)
    session.flush()


def preview(*, session: Session, program: Program, rules: dict, now: datetime) -> dict:
    """How many customers match, and the latest few of them."""
    ids = segment_query(session=session, program=program, rules=rules, now=now).subquery()
    count = session.scalar(select(func.count()).select_from(ids))
    as_of = latest_scoring(session=session, program_id=program.id)
    sample = (
        session.execute(
            select(
                Customer.id,
                Customer.first_name,
                Customer.last_name,
                Card.member_number,
                Customer.points_balance.label("points"),
                Tier.name.label("tier"),
                CustomerScore.status,
            )
            .join(Card, Card.customer_id == Customer.id)
            .outerjoin(Tier, Tier.id == Customer.tier_id)
            .outerjoin(
                CustomerScore,
                (CustomerScore.customer_id == Customer.id)
                & (CustomerScore.program_id == Customer.program_id)
                & (CustomerScore.as_of == as_of),
            )
            .where(Customer.id.in_(select(ids.c.id)))
            .order_by(Customer.id.desc())
            .limit(SAMPLE_SIZE)
        )
        .mappings()
        .all()
    )
    return {"count": count, "sample": [dict(row) for row in sample], "scored_as_of": as_of}


# --- campaigns -------------------------------------------------------------------------------


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _standard_weekdays(expression: str) -> str:
    """Cron counts weekdays from Sunday (0 or 7); APScheduler 3 from Monday. Names mean the same to both."""
    fields = expression.split()
    if len(fields) == 5:
        fields[4] = re.sub(r"(?<![/\d])[0-7](?!\d)", lambda m: _WEEKDAYS[int(m.group())], fields[4])
    return " ".join(fields)


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(_standard_weekdays(expression), timezone=ZoneInfo(timezone))
    except ValueError as exc:
        raise Unprocessable(f"The cron expression {expression!r} is not valid: {exc}.", field="cron") from exc


def next_fire(campaign: Campaign, program: Program, after: datetime) -> datetime | None:
    """The first send strictly after `after` (once: the send time if it is still to come)."""
    if campaign.cron:
        return cron_trigger(campaign.cron, program.timezone).get_next_fire_time(None, after + timedelta(microseconds=1))
    return campaign.send_at if campaign.send_at and campaign.send_at > after else None


def _check_references(*, session: Session, program: Program, campaign: Campaign) -> None:
    # `is not None`: id 0 is no row either, and must not slip past to a foreign-key 500
    segment = session.get(Segment, campaign.segment_id) if campaign.segment_id is not None else None
    if campaign.segment_id is not None and (segment is None or segment.program_id != program.id):
        raise Unprocessable(f"There is no segment {campaign.segment_id}.", field="segment_id")
    reward = session.get(Reward, campaign.reward_id) if campaign.reward_id is not None else None
    if campaign.reward_id is not None and (reward is None or reward.program_id != program.id):
        raise Unprocessable(f"There is no reward {campaign.reward_id}.", field="reward_id")
    if campaign.cron:
        cron_trigger(campaign.cron, program.timezone)
    for index, step in enumerate(
        campaign.steps or [{"templates": campaign.templates, "bonus_points": campaign.bonus_points}]
    ):
        try:
            delivery.check_templates(
                step["templates"], campaign_name=campaign.name, bonus_points=step["bonus_points"], reward=reward
            )
        except Unprocessable as exc:
            if campaign.steps:
                exc.extra["field"] = f"steps.{index}.{exc.extra.get('field', 'templates')}"
            raise


def _apply(*, session: Session, program: Program, campaign: Campaign, data: dict, now: datetime) -> None:
    rules = data.pop("rules", None)
    if rules is not None:
        segment = create_segment(
            session=session, program=program, name=data.get("name", campaign.name), rules=rules, now=now
        )
        data["segment_id"] = segment.id
    for name, value in data.items():
        setattr(campaign, name, value)
    if campaign.send_at is not None and data.get("cron"):
        campaign.send_at = None
    elif campaign.cron is not None and data.get("send_at"):
        campaign.cron = None
    with session.no_autoflush:  # the lookups must not flush a reference they are about to refuse
        _check_references(session=session, program=program, campaign=campaign)


def create_campaign(
    *, session: Session, program: Program, data: dict, created_by_id: int | None, now: datetime
) -> Campaign:
    """A draft; `schedule_campaign` makes it live."""
    data = dict(data)
    if data.get("kind") is CampaignKind.reengagement and not data.get("steps"):
        data["steps"] = DEFAULT_STEPS
    campaign = Campaign(
        program_id=program.id,
        state=CampaignState.draft,
        created_by_id=created_by_id,
        created_at=now,
        updated_at=now,
        steps=[],
        channels=[],
        templates={},
    )
    _apply(session=session, program=program, campaign=campaign, data=data, now=now)
    session.add(campaign)
    session.flush()
    return campaign


def update_campaign(
    *, session: Session, program: Program, campaign: Campaign, changes: dict, now: datetime
) -> Campaign:
    if campaign.state not in (CampaignState.draft, CampaignState.paused):
        raise CampaignStateConflict(f"Campaign {campaign.id} is {campaign.state}; pause it to change it.")
    if campaign.kind is CampaignKind.reengagement and {"channels", "send_at", "cron"} & changes.keys():
        raise Unprocessable("A re-engagement campaign has steps, not channels or a schedule.")
    if campaign.kind is CampaignKind.broadcast and "steps" in changes:
        raise Unprocessable("Steps are for re-engagement campaigns.", field="steps")
    reject_nulls(campaign, changes)
    _apply(session=session, program=program, campaign=campaign, data=dict(changes), now=now)
    delivery_channels = campaign.channels if campaign.kind is CampaignKind.broadcast else []
    missing = [channel for channel in delivery_channels if channel not in campaign.templates]
    if missing:
        raise Unprocessable(f"No template for channel(s) {', '.join(missing)}.", field="templates")
    campaign.updated_at = now
    session.flush()
    return campaign


def _require(campaign: Campaign, *states: CampaignState, action: str) -> None:
    if campaign.state not in states:
        raise CampaignStateConflict(f"Campaign {campaign.id} is {campaign.state}; it cannot be {action}.")


def schedule_campaign(*, session: Session, program: Program, campaign: Campaign, now: datetime) -> Campaign:
    _require(campaign, CampaignState.draft, action="scheduled (resume a paused one)")
    if campaign.kind is CampaignKind.broadcast:
        if not campaign.send_at and not campaign.cron:
            raise Unprocessable("Give the campaign a send_at or a cron schedule first.", field="send_at")
        if campaign.send_at and campaign.send_at < now - timedelta(minutes=5):
            raise Unprocessable("send_at is in the past.", field="send_at")
        campaign.next_run_at = max(campaign.send_at, now) if campaign.send_at else next_fire(campaign, program, now)
    campaign.state = CampaignState.scheduled
    campaign.updated_at = now
    session.flush()
    return campaign


def pause_campaign(*, session: Session, campaign: Campaign, now: datetime) -> Campaign:
    _require(campaign, CampaignState.scheduled, action="paused")
    campaign.state, campaign.updated_at = CampaignState.paused, now
    session.flush()
    return campaign


def resume_campaign(*, session: Session, program: Program, campaign: Campaign, now: datetime) -> Campaign:
    """Back to scheduled. A once-campaign whose time passed while paused sends now; a cron one
    skips the sends it missed."""
    _require(campaign, CampaignState.paused, action="resumed")
    if campaign.kind is CampaignKind.broadcast and campaign.cron:
        campaign.next_run_at = next_fire(campaign, program, now)
    elif campaign.kind is CampaignKind.broadcast and campaign.next_run_at is not None:
        campaign.next_run_at = max(campaign.send_at or now, now)
    campaign.state, campaign.updated_at, campaign.paused_reason = CampaignState.scheduled, now, None
    session.flush()
    return campaign


def pause_run_that_cannot_go_on(*, session: Session, run_id: int, reason: str, now: datetime) -> None:
    """A send whose segment no longer compiles (a rule names a deleted store, say): its campaign is
    paused with the reason, so the other campaigns go on and a marketer fixes and resumes it (the
    send carries on from where it stopped)."""
    run = session.get_one(CampaignRun, run_id)
    campaign = session.scalars(select(Campaign).where(Campaign.id == run.campaign_id).with_for_update()).one()
    if campaign.state is CampaignState.scheduled:
        campaign.state, campaign.paused_reason, campaign.updated_at = CampaignState.paused, reason[:500], now
    log.error("campaign %s: send %s paused: %s", campaign.id, run.id, reason)


def cancel_campaign(*, session: Session, campaign: Campaign, now: datetime) -> Campaign:
    """Stops everything: no further send, open runs stop, customers in the sequence leave it."""
    _require(campaign, CampaignState.draft, CampaignState.scheduled, CampaignState.paused, action="cancelled")
    campaign.state, campaign.next_run_at, campaign.updated_at = CampaignState.cancelled, None, now
    session.execute(
        update(CampaignRun)
        .where(CampaignRun.campaign_id == campaign.id, CampaignRun.state == RunState.running)
        .values(state=RunState.done, finished_at=now)
    )
    session.execute(
        update(Enrollment)
        .where(Enrollment.campaign_id == campaign.id, Enrollment.state == EnrollmentState.active)
        .values(state=EnrollmentState.exited, ended_at=now, next_step_at=None)
    )
    session.flush()
    return campaign


# --- sends -----------------------------------------------------------------------------------


def start_due_runs(*, session: Session, now: datetime) -> list[int]:
    """Turn every due send into a run and move each schedule on; the campaign rows stay locked
    until commit, so two ticks cannot start the same send."""
    due = session.scalars(
        select(Campaign)
        .where(
            Campaign.kind == CampaignKind.broadcast,
            Campaign.state == CampaignState.scheduled,
            Campaign.next_run_at <= now,
        )
        .order_by(Campaign.next_run_at, Campaign.id)
        .with_for_update(skip_locked=True)
    ).all()
    runs = []
    for campaign in due:
        program = session.get_one(Program, campaign.program_id)
        due_at = campaign.next_run_at
        assert due_at is not None  # what the query selected on
        run = CampaignRun(campaign_id=campaign.id, scheduled_for=due_at, started_at=now)
        session.add(run)
        # A scheduler that was down sends a missed time once, not once per missed time.
        campaign.next_run_at = next_fire(campaign, program, max(now, due_at)) if campaign.cron else None
        session.flush()
        runs.append(run.id)
        log.info("campaign %s: send %s started for %s", campaign.id, run.id, run.scheduled_for.isoformat())
    return runs


def open_runs(*, session: Session) -> list[int]:
    return list(
        session.scalars(select(CampaignRun.id).where(CampaignRun.state == RunState.running).order_by(CampaignRun.id))
    )


def _finish(run: CampaignRun, campaign: Campaign, now: datetime) -> bool:
    run.state, run.finished_at = RunState.done, now
    if campaign.state is CampaignState.scheduled and campaign.next_run_at is None:
        campaign.state = CampaignState.completed
    return True


def send_run_batch(*, session: Session, run_id: int, now: datetime, settings: CampaignSettings) -> bool:
    """Expand the next batch of the run's segment into outbox rows; True when the run is done.

    Each batch is one transaction and moves the run's cursor, so a crash resends nothing and
    the next tick carries on after the last committed customer."""
    run = session.scalars(select(CampaignRun).where(CampaignRun.id == run_id).with_for_update()).one()
    campaign = session.get_one(Campaign, run.campaign_id)
    if run.state is RunState.done:
        return True
    if campaign.state is CampaignState.paused:
        return True  # picked up again on resume; nothing more this tick
    program = session.get_one(Program, campaign.program_id)
    rules = session.get_one(Segment, campaign.segment_id).rules
    ids = list(
        session.scalars(
            segment_query(session=session, program=program, rules=rules, now=now)
            .where(Customer.id > run.cursor)
            .order_by(Customer.id)
            .limit(settings.batch_size)
        )
    )
    reward = session.get(Reward, campaign.reward_id) if campaign.reward_id else None
    context = delivery.variables(campaign_name=campaign.name, bonus_points=campaign.bonus_points, reward=reward)
    reach = delivery.reachable(session, ids, campaign.channels)
    fields = customers_fields(session, ids)  # one query for the batch, not one per message
    targets = []
    for customer_id in ids:
        holdout = delivery.in_holdout(
            campaign_id=campaign.id, customer_id=customer_id, percent=campaign.holdout_percent
        )
        target = CampaignTarget(
            campaign_id=campaign.id, run_id=run.id, customer_id=customer_id, holdout=holdout, targeted_at=now
        )
        if not holdout:
            delivery.queue_target(
                session=session,
                target=target,
                campaign=campaign,
                channels=reach[customer_id],
                templates=campaign.templates,
                bonus=campaign.bonus_points,
                context=context,
                key=f"campaign:{campaign.id}:run:{run.id}:c:{customer_id}",
                now=now,
                fields=fields.get(customer_id),
            )
        targets.append(target)
    # Added together, the targets go in one multi-row INSERT at the flush, not one autoflushed
    # INSERT per customer ahead of the next one's queries.
    session.add_all(targets)
    run.targeted += len(ids)
    if ids:
        run.cursor = ids[-1]
    session.flush()
    return _finish(run, campaign, now) if len(ids) < settings.batch_size else False


# --- calendar and scores ---------------------------------------------------------------------


def calendar(*, session: Session, program: Program, start: datetime, end: datetime, now: datetime) -> list[dict]:
    """Sends that happened in [start, end) and those scheduled to come."""
    entries = []
    for run, campaign in session.execute(
        select(CampaignRun, Campaign)
        .join(Campaign, Campaign.id == CampaignRun.campaign_id)
        .where(Campaign.program_id == program.id, CampaignRun.scheduled_for >= start, CampaignRun.scheduled_for < end)
    ):
        entries.append(_entry(campaign, run.scheduled_for, sent=True))
    for campaign in session.scalars(
        select(Campaign).where(
            Campaign.program_id == program.id,
            Campaign.kind == CampaignKind.broadcast,
            Campaign.state.in_([CampaignState.scheduled, CampaignState.paused]),
        )
    ):
        at = campaign.next_run_at
        while at is not None and at < end and len(entries) < 2000:
            if at >= start:
                entries.append(_entry(campaign, at, sent=False))
            at = next_fire(campaign, program, at) if campaign.cron else None
    return sorted(entries, key=lambda entry: (entry["at"], entry["campaign_id"]))


def _entry(campaign: Campaign, at: datetime, *, sent: bool) -> dict:
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "kind": campaign.kind,
        "state": campaign.state,
        "at": at,
        "sent": sent,
    }


def score_program(*, session: Session, program: Program, now: datetime, settings: CampaignSettings) -> ScoringRun:
    """Tonight's scores for one program, the day's counts per status, and old rows pruned."""
    rules = scoring.ScoringRules.from_settings(settings)
    as_of, _ = scoring.local_day(now=now, timezone=program.timezone)
    run = session.scalar(select(ScoringRun).where(ScoringRun.program_id == program.id, ScoringRun.as_of == as_of))
    if run is None:
        run = ScoringRun(program_id=program.id, as_of=as_of, counts={}, model={})
        session.add(run)
    run.started_at, run.finished_at = now, None
    as_of, prepared = scoring.write_program_scores(
        session=session, program_id=program.id, timezone=program.timezone, now=now, rules=rules
    )
    counts = dict(
        session.execute(
            select(CustomerScore.status, func.count())
            .where(CustomerScore.program_id == program.id, CustomerScore.as_of == as_of)
            .group_by(CustomerScore.status)
        ).all()
    )
    run.counts = {str(status): n for status, n in counts.items()}
    run.customers = sum(counts.values())
    run.program_gap_days, run.model = prepared.program_gap, prepared.model
    run.finished_at = now
    session.execute(
        delete(CustomerScore).where(
            CustomerScore.program_id == program.id,
            CustomerScore.as_of < as_of - timedelta(days=settings.score_retention_days),
        )
    )
    session.flush()
    log.info(
        "scored program %s as of %s: %s (typical gap %.1f days, model %s; seconds %s)",
        program.id,
        as_of,
        run.counts,
        prepared.program_gap,
        "fitted" if "bgnbd" in prepared.model else prepared.model.get("skipped"),
        prepared.seconds,
    )
    return run


def get_or_404(session: Session, model, object_id: int, program_id: int):
    found = session.get(model, object_id)
    if found is None or found.program_id != program_id:
        raise NotFound(f"There is no {model.__tablename__.rstrip('s')} {object_id}.")
    return found
