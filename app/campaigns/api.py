"""Segments, campaigns, their results, scores and tags: /api/v1, for marketers and admins."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import Blueprint
from sqlalchemy import delete, select

from app.api import current_user_id, endpoint
from app.campaigns import reengagement, results, schemas, service  # noqa: F401  (reengagement: the till receiver)
from app.campaigns.models import Campaign, CustomerScore, CustomerTag, Enrollment, Segment
from app.campaigns.segments import normalize_tag
from app.crud import get_or_404
from app.db import insert_unless_exists, table_of, utcnow
from app.extensions import get_session
from app.loyalty.models import Customer
from app.loyalty.service import get_program
from app.roles import Role

bp = Blueprint("campaigns", __name__, url_prefix="/api/v1")

MARKETING = [Role.admin, Role.marketer]


def _program():
    return get_program(session=get_session())


def _segment(segment_id: int) -> Segment:
    return service.get_or_404(get_session(), Segment, segment_id, _program().id)


def _campaign(campaign_id: int) -> Campaign:
    return service.get_or_404(get_session(), Campaign, campaign_id, _program().id)


def campaign_read(campaign: Campaign) -> schemas.CampaignRead:
    return schemas.CampaignRead.model_validate(
        {**{c.key: getattr(campaign, c.key) for c in Campaign.__table__.columns}, "timezone": _program().timezone}
    )


# --- segments --------------------------------------------------------------------------------


@bp.get("/segments")
@endpoint(roles=MARKETING, query=schemas.Page, response=list[schemas.SegmentRead], tags=["segments"])
def list_segments(query: schemas.Page):
    """Saved segments, newest first."""
    return list(
        get_session().scalars(
            select(Segment)
            .where(Segment.program_id == _program().id)
            .order_by(Segment.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
    )


@bp.post("/segments")
@endpoint(roles=MARKETING, body=schemas.SegmentCreate, response=schemas.SegmentRead, status=201, tags=["segments"])
def create_segment(body: schemas.SegmentCreate):
    """Save a segment; an invalid rule is a 422 naming it."""
    return service.create_segment(
        session=get_session(), program=_program(), name=body.name, rules=body.rules, now=utcnow()
    )


@bp.get("/segments/<int:segment_id>")
@endpoint(roles=MARKETING, response=schemas.SegmentRead, tags=["segments"], errors=[404])
def get_segment(segment_id: int):
    """One segment."""
    return _segment(segment_id)


@bp.patch("/segments/<int:segment_id>")
@endpoint(roles=MARKETING, body=schemas.SegmentUpdate, response=schemas.SegmentRead, tags=["segments"], errors=[404])
def update_segment(segment_id: int, body: schemas.SegmentUpdate):
    """Rename a segment or change its rules."""
    return service.update_segment(
        session=get_session(),
        segment=_segment(segment_id),
        program=_program(),
        changes=body.model_dump(exclude_unset=True),
        now=utcnow(),
    )


@bp.delete("/segments/<int:segment_id>")
@endpoint(roles=MARKETING, tags=["segments"], errors=[404, 409])
def delete_segment(segment_id: int):
    """Delete a segment no campaign uses."""
    service.delete_segment(session=get_session(), segment=_segment(segment_id))


@bp.get("/segments/<int:segment_id>/preview")
@endpoint(roles=MARKETING, response=schemas.SegmentPreview, tags=["segments"], errors=[404])
def preview_segment(segment_id: int):
    """How many customers the segment holds now, and a sample of them."""
    return schemas.SegmentPreview.model_validate(
        service.preview(session=get_session(), program=_program(), rules=_segment(segment_id).rules, now=utcnow())
    )


@bp.post("/segments/preview")
@endpoint(roles=MARKETING, body=schemas.PreviewRequest, response=schemas.SegmentPreview, tags=["segments"])
def preview_rules(body: schemas.PreviewRequest):
    """The count and sample for unsaved rules (the dashboard's live count)."""
    return schemas.SegmentPreview.model_validate(
        service.preview(session=get_session(), program=_program(), rules=body.rules, now=utcnow())
    )


# --- campaigns -------------------------------------------------------------------------------


@bp.get("/campaigns")
@endpoint(roles=MARKETING, query=schemas.CampaignQuery, response=list[schemas.CampaignRead], tags=["campaigns"])
def list_campaigns(query: schemas.CampaignQuery):
    """Campaigns, newest first."""
    statement = select(Campaign).where(Campaign.program_id == _program().id)
    if query.state:
        statement = statement.where(Campaign.state == query.state)
    if query.kind:
        statement = statement.where(Campaign.kind == query.kind)
    rows = get_session().scalars(statement.order_by(Campaign.id.desc()).limit(query.limit).offset(query.offset))
    return [campaign_read(campaign) for campaign in rows]


@bp.post("/campaigns")
@endpoint(roles=MARKETING, body=schemas.CampaignCreate, response=schemas.CampaignRead, status=201, tags=["campaigns"])
def create_campaign(body: schemas.CampaignCreate):
    """Create a draft campaign (a broadcast to a segment, or a re-engagement sequence)."""
    data = body.model_dump(exclude_none=True)
    campaign = service.create_campaign(
        session=get_session(), program=_program(), data=data, created_by_id=current_user_id(), now=utcnow()
    )
    return campaign_read(campaign)


@bp.get("/campaigns/calendar")
@endpoint(roles=MARKETING, query=schemas.CalendarQuery, response=list[schemas.CalendarEntry], tags=["campaigns"])
def campaign_calendar(query: schemas.CalendarQuery):
    """Sends in a date range (UTC days): those that happened and those scheduled."""
    start = datetime.combine(query.start, time(), tzinfo=UTC)
    entries = service.calendar(
        session=get_session(), program=_program(), start=start, end=start + timedelta(days=query.days), now=utcnow()
    )
    return [schemas.CalendarEntry.model_validate(entry) for entry in entries]


@bp.get("/campaigns/<int:campaign_id>")
@endpoint(roles=MARKETING, response=schemas.CampaignRead, tags=["campaigns"], errors=[404])
def get_campaign(campaign_id: int):
    """One campaign."""
    return campaign_read(_campaign(campaign_id))


@bp.patch("/campaigns/<int:campaign_id>")
@endpoint(
    roles=MARKETING, body=schemas.CampaignUpdate, response=schemas.CampaignRead, tags=["campaigns"], errors=[404, 409]
)
def update_campaign(campaign_id: int, body: schemas.CampaignUpdate):
    """Change a draft or paused campaign."""
    campaign = service.update_campaign(
        session=get_session(),
        program=_program(),
        campaign=_campaign(campaign_id),
        changes=body.model_dump(exclude_unset=True),
        now=utcnow(),
    )
    return campaign_read(campaign)


def _transition(campaign_id: int, action: str):
    campaign, program, now = _campaign(campaign_id), _program(), utcnow()
    session = get_session()
    if action == "schedule":
        campaign = service.schedule_campaign(session=session, program=program, campaign=campaign, now=now)
    elif action == "pause":
        campaign = service.pause_campaign(session=session, campaign=campaign, now=now)
    elif action == "resume":
        campaign = service.resume_campaign(session=session, program=program, campaign=campaign, now=now)
    else:
        campaign = service.cancel_campaign(session=session, campaign=campaign, now=now)
    return campaign_read(campaign)


@bp.post("/campaigns/<int:campaign_id>/schedule")
@endpoint(roles=MARKETING, response=schemas.CampaignRead, tags=["campaigns"], errors=[404, 409])
def schedule_campaign(campaign_id: int):
    """Make a draft live: a broadcast waits for its time, a sequence starts enrolling tonight."""
    return _transition(campaign_id, "schedule")


@bp.post("/campaigns/<int:campaign_id>/pause")
@endpoint(roles=MARKETING, response=schemas.CampaignRead, tags=["campaigns"], errors=[404, 409])
def pause_campaign(campaign_id: int):
    """Stop sending until resumed (a send in progress stops after its current batch)."""
    return _transition(campaign_id, "pause")


@bp.post("/campaigns/<int:campaign_id>/resume")
@endpoint(roles=MARKETING, response=schemas.CampaignRead, tags=["campaigns"], errors=[404, 409])
def resume_campaign(campaign_id: int):
    """Carry on; a once-send whose time passed goes now, a cron one waits for its next time."""
    return _transition(campaign_id, "resume")


@bp.post("/campaigns/<int:campaign_id>/cancel")
@endpoint(roles=MARKETING, response=schemas.CampaignRead, tags=["campaigns"], errors=[404, 409])
def cancel_campaign(campaign_id: int):
    """End the campaign for good: no more sends, customers leave its sequence."""
    return _transition(campaign_id, "cancel")


@bp.get("/campaigns/<int:campaign_id>/results")
@endpoint(
    roles=MARKETING, query=schemas.ResultsQuery, response=schemas.CampaignResults, tags=["campaigns"], errors=[404]
)
def campaign_results(campaign_id: int, query: schemas.ResultsQuery):
    """Targeted, held out, sent, delivered, failed, suppressed, opted out, returns and uplift vs holdout."""
    return schemas.CampaignResults.model_validate(
        results.campaign_results(session=get_session(), campaign=_campaign(campaign_id), days=query.days, now=utcnow())
    )


@bp.get("/campaigns/<int:campaign_id>/enrollments")
@endpoint(roles=MARKETING, query=schemas.Page, response=list[schemas.EnrollmentRead], tags=["campaigns"], errors=[404])
def campaign_enrollments(campaign_id: int, query: schemas.Page):
    """Customers in (or through) a re-engagement sequence, newest first."""
    campaign = _campaign(campaign_id)
    return list(
        get_session().scalars(
            select(Enrollment)
            .where(Enrollment.campaign_id == campaign.id)
            .order_by(Enrollment.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
    )


# --- scores and tags -------------------------------------------------------------------------


@bp.get("/scores/trend")
@endpoint(roles=MARKETING, query=schemas.TrendQuery, response=schemas.ScoreTrend, tags=["scores"])
def score_trend(query: schemas.TrendQuery):
    """Customers per status for each night, enrolments per day, and the latest model fit."""
    since = (utcnow() - timedelta(days=query.days)).date()
    return schemas.ScoreTrend.model_validate(
        results.score_trend(session=get_session(), program_id=_program().id, since=since)
    )


@bp.get("/customers/<int:customer_id>/scores")
@endpoint(roles=MARKETING, query=schemas.Page, response=list[schemas.CustomerScoreRead], tags=["scores"], errors=[404])
def customer_scores(customer_id: int, query: schemas.Page):
    """A customer's nightly scores, newest first: how their status and numbers moved."""
    customer = get_or_404(get_session(), Customer, customer_id)
    return list(
        get_session().scalars(
            select(CustomerScore)
            .where(CustomerScore.program_id == customer.program_id, CustomerScore.customer_id == customer.id)
            .order_by(CustomerScore.as_of.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
    )


def _tags(customer_id: int) -> schemas.TagsRead:
    tags = get_session().scalars(
        select(CustomerTag.tag).where(CustomerTag.customer_id == customer_id).order_by(CustomerTag.tag)
    )
    return schemas.TagsRead(customer_id=customer_id, tags=list(tags))


@bp.get("/customers/<int:customer_id>/tags")
@endpoint(roles=MARKETING, response=schemas.TagsRead, tags=["customers"], errors=[404])
def customer_tags(customer_id: int):
    """A customer's tags (for segments)."""
    return _tags(get_or_404(get_session(), Customer, customer_id).id)


@bp.put("/customers/<int:customer_id>/tags/<tag>")
@endpoint(roles=MARKETING, response=schemas.TagsRead, tags=["customers"], errors=[404, 422])
def add_customer_tag(customer_id: int, tag: str):
    """Tag a customer (lower-cased; tagging twice changes nothing)."""
    customer = get_or_404(get_session(), Customer, customer_id)
    value = normalize_tag(schemas.TagValue.validate_python(tag))
    session = get_session()
    tagging = insert_unless_exists(session.get_bind().dialect.name, table_of(CustomerTag), ["tag", "customer_id"])
    session.execute(tagging.values(customer_id=customer.id, tag=value, created_at=utcnow()))
    return _tags(customer.id)


@bp.delete("/customers/<int:customer_id>/tags/<tag>")
@endpoint(roles=MARKETING, response=schemas.TagsRead, tags=["customers"], errors=[404])
def remove_customer_tag(customer_id: int, tag: str):
    """Remove a tag from a customer."""
    customer = get_or_404(get_session(), Customer, customer_id)
    get_session().execute(
        delete(CustomerTag).where(CustomerTag.customer_id == customer.id, CustomerTag.tag == normalize_tag(tag))
    )
    return _tags(customer.id)
