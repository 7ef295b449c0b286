"""Scores, segments, campaigns, their runs, re-engagement enrolments and who was targeted."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, str_enum, utcnow


class CustomerStatus(enum.StrEnum):
    new = "new"
    active = "active"
    lapsing = "lapsing"
    lapsed = "lapsed"
    won_back = "won_back"


class CampaignKind(enum.StrEnum):
    broadcast = "broadcast"  # a segment, sent once or on a cron schedule
    reengagement = "reengagement"  # a sequence of steps for each customer who becomes lapsing


class CampaignState(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"  # a broadcast waits for its next send; a sequence enrols and sends
    paused = "paused"
    cancelled = "cancelled"
    completed = "completed"


class RunState(enum.StrEnum):
    running = "running"
    done = "done"


class EnrollmentState(enum.StrEnum):
    active = "active"
    completed = "completed"  # every step came due without a visit
    won_back = "won_back"  # visited while in the sequence
    exited = "exited"  # the sequence was cancelled


class CustomerScore(Base):
    """One customer's scores as of one day. Written only by the nightly scoring."""

    __tablename__ = "customer_scores"

    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    # Visit facts over the scoring window; NULL when the customer has no visit in it.
    recency_days: Mapped[int | None] = mapped_column(Integer)
    tenure_days: Mapped[int | None] = mapped_column(Integer)  # since the first visit in the window
    visits: Mapped[int] = mapped_column(Integer, default=0)  # distinct visit days
    spend_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    r_score: Mapped[int | None] = mapped_column(Integer)
    f_score: Mapped[int | None] = mapped_column(Integer)
    m_score: Mapped[int | None] = mapped_column(Integer)
    median_gap_days: Mapped[float | None] = mapped_column(Float)  # the customer's own rhythm
    rhythm_days: Mapped[float | None] = mapped_column(Float)  # own median blended with the program's
    last_gap_days: Mapped[int | None] = mapped_column(Integer)  # the gap the last visit closed
    overdue_factor: Mapped[float | None] = mapped_column(Float)
    status: Mapped[CustomerStatus] = mapped_column(str_enum(CustomerStatus))
    p_alive: Mapped[float | None] = mapped_column(Float)
    p_return: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_customer_scores_program_as_of_status", "program_id", "as_of", "status"),)


class ScoringRun(Base):
    """One night's scoring of one program: the counts per status (the trend charts) and the model fit."""

    __tablename__ = "scoring_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    as_of: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    program_gap_days: Mapped[float | None] = mapped_column(Float)
    model: Mapped[dict] = mapped_column(JSON, default=dict)

    __table_args__ = (UniqueConstraint("program_id", "as_of", name="uq_scoring_runs_program_as_of"),)


class CustomerTag(Base):
    __tablename__ = "customer_tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    tag: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("tag", "customer_id", name="uq_customer_tags_tag_customer"),)


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    rules: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[CampaignKind] = mapped_column(str_enum(CampaignKind))
    # A broadcast's audience; for a sequence, an optional narrowing of who is enrolled.
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id"))
    # In fallback order: each customer gets the first channel they can be reached on.
    channels: Mapped[list] = mapped_column(JSON, default=list)
    templates: Mapped[dict] = mapped_column(JSON, default=dict)
    # Sequences: [{"day": 0, "channels": [...], "templates": {...}, "bonus_points": 0}, ...]
    steps: Mapped[list] = mapped_column(JSON, default=list)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cron: Mapped[str | None] = mapped_column(String(120))  # in the program's time zone
    state: Mapped[CampaignState] = mapped_column(str_enum(CampaignState), default=CampaignState.draft)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the scheduler paused it (a segment that no longer compiles, say); cleared on resume.
    paused_reason: Mapped[str | None] = mapped_column(String(500))
    holdout_percent: Mapped[float] = mapped_column(Float, default=0.0)
    reward_id: Mapped[int | None] = mapped_column(ForeignKey("rewards.id"))
    bonus_points: Mapped[int] = mapped_column(Integer, default=0)
    # Results count a return (a visit) this many days after the message.
    return_days: Mapped[int] = mapped_column(Integer, default=14)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    segment: Mapped[Segment | None] = relationship()

    __table_args__ = (
        Index("ix_campaigns_state_next_run_at", "state", "next_run_at"),
        CheckConstraint("holdout_percent >= 0 AND holdout_percent <= 90", name="holdout_range"),
        CheckConstraint("bonus_points >= 0", name="bonus_nonnegative"),
    )


class CampaignRun(Base):
    """One send of a broadcast; `cursor` is the last customer id expanded, so a crash resumes."""

    __tablename__ = "campaign_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[RunState] = mapped_column(str_enum(RunState), default=RunState.running)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    targeted: Mapped[int] = mapped_column(Integer, default=0)

    # A due time is run once, however many schedulers or ticks see it.
    __table_args__ = (
        UniqueConstraint("campaign_id", "scheduled_for", name="uq_campaign_runs_campaign_scheduled_for"),
        Index("ix_campaign_runs_state", "state"),
    )


class Enrollment(Base):
    """A customer in a re-engagement sequence; the holdout walks the same steps and is sent nothing."""

    __tablename__ = "reengagement_enrollments"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[EnrollmentState] = mapped_column(str_enum(EnrollmentState), default=EnrollmentState.active)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    next_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_reengagement_enrollments_customer_state", "customer_id", "state"),
        Index("ix_reengagement_enrollments_state_next_step_at", "state", "next_step_at"),
        # At most one running sequence per customer, whichever campaign enrolled them.
        Index(
            "uq_reengagement_enrollments_active_customer",
            "customer_id",
            unique=True,
            postgresql_where=text("state = 'active'"),
            sqlite_where=text("state = 'active'"),
        ),
    )


class CampaignTarget(Base):
    """A customer selected by a broadcast run or a sequence step: messaged, held out or skipped."""

    __tablename__ = "campaign_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_runs.id"))
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("reengagement_enrollments.id"))
    step: Mapped[int | None] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str | None] = mapped_column(String(32))
    # Why nothing was queued for a customer not held out (no channel they consented to...).
    skip_reason: Mapped[str | None] = mapped_column(String(64))
    # The outbox row: how results find what became of the message.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    bonus_points: Mapped[int] = mapped_column(Integer, default=0)
    targeted_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("run_id", "customer_id", name="uq_campaign_targets_run_customer"),
        UniqueConstraint("enrollment_id", "step", name="uq_campaign_targets_enrollment_step"),
        Index("ix_campaign_targets_campaign_step", "campaign_id", "step"),
    )
