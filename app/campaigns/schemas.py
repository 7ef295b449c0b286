from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BeforeValidator, Field, TypeAdapter, model_validator

from app.campaigns.models import CampaignKind, CampaignState, CustomerStatus, EnrollmentState
from app.schemas import Input, Name, Output, Page

ChannelName = Literal["wallet", "push", "sms", "voice", "email"]
Rules = Annotated[dict, Field(description="A segment rule: see app/campaigns/segments.py.")]


def _template(value):
    return {"body": value} if isinstance(value, str) else value  # a bare string is the body


class MessageTemplate(Input):
    """What one channel says; Jinja fields: first_name, name, points, tier, program, bonus_points,
    reward, campaign."""

    title: str | None = Field(default=None, max_length=120, description="Push title, wallet header, e-mail subject.")
    body: str = Field(min_length=1, max_length=1600)


Template = Annotated[MessageTemplate, BeforeValidator(_template)]


def _check_templates(channels: Sequence[str], templates: dict) -> None:
    missing = [channel for channel in channels if channel not in templates]
    if missing:
        raise ValueError(f"no template for channel(s) {', '.join(missing)}")
    if len(set(channels)) != len(channels):
        raise ValueError("a channel is listed twice")


# --- segments ---


class SegmentCreate(Input):
    name: Name
    rules: Rules


class SegmentUpdate(Input):
    name: Name | None = None
    rules: Rules | None = None


class SegmentRead(Output):
    id: int
    name: str
    rules: dict
    created_at: datetime
    updated_at: datetime


class PreviewRequest(Input):
    rules: Rules


class PreviewCustomer(Output):
    id: int
    first_name: str
    last_name: str
    member_number: str
    points: int
    tier: str | None
    status: CustomerStatus | None


class SegmentPreview(Output):
    count: int
    sample: list[PreviewCustomer]
    scored_as_of: date | None = Field(description="The nightly scores the score fields come from.")


# --- campaigns ---


class Step(Input):
    day: int = Field(ge=0, le=365, description="Days after the customer was found lapsing.")
    channels: list[ChannelName] = Field(min_length=1)
    templates: dict[ChannelName, Template]
    bonus_points: int = Field(default=0, ge=0, le=100_000)

    @model_validator(mode="after")
    def _templates_cover_channels(self) -> Step:
        _check_templates(self.channels, self.templates)
        return self


class CampaignCreate(Input):
    name: Name
    kind: CampaignKind = CampaignKind.broadcast
    segment_id: int | None = Field(default=None, description="The audience; or give `rules` to save a new segment.")
    rules: Rules | None = None
    channels: list[ChannelName] = Field(default_factory=list, description="In fallback order.")
    templates: dict[ChannelName, Template] = Field(default_factory=dict)
    steps: list[Step] | None = Field(
        default=None, max_length=10, description="Re-engagement steps; the default sequence when omitted."
    )
    send_at: AwareDatetime | None = None
    cron: str | None = Field(default=None, max_length=120, description="Five-field cron in the program's time zone.")
    holdout_percent: float = Field(default=0, ge=0, le=90)
    reward_id: int | None = None
    bonus_points: int = Field(default=0, ge=0, le=100_000)
    return_days: int = Field(default=14, ge=1, le=365)

    @model_validator(mode="after")
    def _consistent(self) -> CampaignCreate:
        if self.segment_id is not None and self.rules is not None:
            raise ValueError("give segment_id or rules, not both")
        if self.send_at is not None and self.cron is not None:
            raise ValueError("give send_at (once) or cron (repeating), not both")
        if self.kind is CampaignKind.broadcast:
            if self.steps is not None:
                raise ValueError("steps are for re-engagement campaigns")
            if not self.channels:
                raise ValueError("a broadcast needs at least one channel")
            if self.segment_id is None and self.rules is None:
                raise ValueError("a broadcast needs a segment_id or rules")
            _check_templates(self.channels, self.templates)
        elif self.send_at is not None or self.cron is not None or self.channels:
            raise ValueError("a re-engagement campaign runs per customer: give steps, not channels or a schedule")
        return self


class CampaignUpdate(Input):
    name: Name | None = None
    segment_id: int | None = None
    rules: Rules | None = None
    channels: list[ChannelName] | None = None
    templates: dict[ChannelName, Template] | None = None
    steps: list[Step] | None = Field(default=None, max_length=10)
    send_at: AwareDatetime | None = None
    cron: str | None = Field(default=None, max_length=120)
    holdout_percent: float | None = Field(default=None, ge=0, le=90)
    reward_id: int | None = None
    bonus_points: int | None = Field(default=None, ge=0, le=100_000)
    return_days: int | None = Field(default=None, ge=1, le=365)


class CampaignRead(Output):
    id: int
    name: str
    kind: CampaignKind
    state: CampaignState
    segment_id: int | None
    channels: list[str]
    templates: dict
    steps: list[dict]
    send_at: datetime | None
    cron: str | None
    timezone: str = Field(description="The time zone of the cron expression (the program's).")
    next_run_at: datetime | None
    paused_reason: str | None = Field(description="Why the scheduler paused the campaign, if it did.")
    holdout_percent: float
    reward_id: int | None
    bonus_points: int
    return_days: int
    created_at: datetime


class CampaignQuery(Page):
    state: CampaignState | None = None
    kind: CampaignKind | None = None


class CalendarQuery(Input):
    start: date
    days: int = Field(default=42, ge=1, le=93)


class CalendarEntry(Output):
    campaign_id: int
    name: str
    kind: CampaignKind
    state: CampaignState
    at: datetime
    sent: bool = Field(description="True for a send that happened; false for one to come.")


# --- results ---


class ResultsQuery(Input):
    days: int | None = Field(
        default=None, ge=1, le=365, description="Returned within N days (default: the campaign's)."
    )


class GroupOutcome(Output):
    customers: int
    returned: int
    return_rate: float | None
    points_after: int
    spend_after: str
    redemptions_after: int = Field(
        description="Redemptions in the window: of the campaign's reward if it has one, else of any reward."
    )


class Uplift(Output):
    difference: float = Field(description="Return rate of the treatment group minus the holdout's.")
    low: float
    high: float
    confidence: float = 0.95


class StepResults(Output):
    step: int | None
    day: int | None
    targeted: int
    held_out: int
    queued: int
    sent: int
    delivered: int
    failed: int
    suppressed: dict[str, int] = Field(description="Suppressed and skipped, by reason.")
    opted_out: int
    treatment: GroupOutcome = Field(description="Everyone not held out, reached or not (intent to treat).")
    holdout: GroupOutcome
    uplift: Uplift | None


class CampaignResults(Output):
    campaign_id: int
    name: str
    kind: CampaignKind
    return_days: int
    window_complete: bool = Field(description="Every target's N days are over.")
    total: StepResults
    steps: list[StepResults]


class EnrollmentRead(Output):
    id: int
    campaign_id: int
    customer_id: int
    holdout: bool
    state: EnrollmentState
    enrolled_at: datetime
    next_step: int
    next_step_at: datetime | None
    returned_at: datetime | None


# --- scores and tags ---


class CustomerScoreRead(Output):
    as_of: date
    status: CustomerStatus
    recency_days: int | None
    visits: int
    spend_cents: int
    r_score: int | None
    f_score: int | None
    m_score: int | None
    median_gap_days: float | None
    rhythm_days: float | None
    overdue_factor: float | None
    p_alive: float | None
    p_return: float | None


class TrendQuery(Input):
    days: int = Field(default=90, ge=1, le=730)


class StatusCounts(Output):
    as_of: date
    counts: dict[str, int]


class DayCount(Output):
    day: date
    customers: int


class ScoreTrend(Output):
    statuses: list[StatusCounts]
    enrollments: list[DayCount]
    model: dict = Field(description="The latest night's model fit (BG/NBD and MBG/NBD parameters).")


Tag = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")]


class TagsRead(Output):
    customer_id: int
    tags: list[str]


TagValue = TypeAdapter(Tag)
