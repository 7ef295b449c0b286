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
    """Saved segments, newest first (admins and marketers).

    A segment is a saved rule over the program's customers; its members are worked out afresh each
    time it is used (a preview, a send), so the list holds no counts. Paged with `limit` and `offset`.
    """
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
    """Save a segment; an invalid rule is a 422 naming it.

    Admins and marketers. A rule is a group (`{"all": [...]}`, `{"any": [...]}`, `{"not": rule}`) or a
    condition (`{"field": "points", "op": "gte", "value": 100}`) on tier, points, nightly scores and
    status, stores visited, distance, consent, enrolment date or tags. The rule is compiled before it
    is saved, so a 422 names the part that does not compile (`rules.all[1].value`) and why.
    """
    return service.create_segment(
        session=get_session(), program=_program(), name=body.name, rules=body.rules, now=utcnow()
    )


@bp.get("/segments/<int:segment_id>")
@endpoint(roles=MARKETING, response=schemas.SegmentRead, tags=["segments"], errors=[404])
def get_segment(segment_id: int):
    """One segment of the program, with its rule (admins and marketers).

    404 when no segment of this program has the id. The members are not listed here: the preview
    counts them.
    """
    return _segment(segment_id)


@bp.patch("/segments/<int:segment_id>")
@endpoint(roles=MARKETING, body=schemas.SegmentUpdate, response=schemas.SegmentRead, tags=["segments"], errors=[404])
def update_segment(segment_id: int, body: schemas.SegmentUpdate):
    """Rename a segment or change its rules (admins and marketers).

    Only the fields sent change; new rules are compiled first, so an invalid one is a 422 and the
    segment stays as it was. Campaigns using the segment send to the new rule from their next batch
    on, a send already running included.
    """
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
    """Delete a segment no campaign uses (admins and marketers).

    A segment any campaign points at, cancelled and completed ones included, is a 409 naming how
    many; campaigns made with `rules` each have a segment of their own.
    """
    service.delete_segment(session=get_session(), segment=_segment(segment_id))


@bp.get("/segments/<int:segment_id>/preview")
@endpoint(roles=MARKETING, response=schemas.SegmentPreview, tags=["segments"], errors=[404])
def preview_segment(segment_id: int):
    """How many customers the segment holds now, and a sample of them (admins and marketers).

    The count is computed now; the sample is the ten most recently enrolled members, with their
    points, tier and status. Score fields come from the latest nightly scoring, whose date is
    `scored_as_of` (null before the first one).
    """
    return schemas.SegmentPreview.model_validate(
        service.preview(session=get_session(), program=_program(), rules=_segment(segment_id).rules, now=utcnow())
    )


@bp.post("/segments/preview")
@endpoint(roles=MARKETING, body=schemas.PreviewRequest, response=schemas.SegmentPreview, tags=["segments"])
def preview_rules(body: schemas.PreviewRequest):
    """The count and sample for unsaved rules (the dashboard's live count).

    Admins and marketers. The same answer as a saved segment's preview, for rules being typed, so
    nothing is written. An invalid rule is a 422 naming the part that does not compile, which the
    dashboard shows beside the count.
    """
    return schemas.SegmentPreview.model_validate(
        service.preview(session=get_session(), program=_program(), rules=body.rules, now=utcnow())
    )


# --- campaigns -------------------------------------------------------------------------------


@bp.get("/campaigns")
@endpoint(roles=MARKETING, query=schemas.CampaignQuery, response=list[schemas.CampaignRead], tags=["campaigns"])
def list_campaigns(query: schemas.CampaignQuery):
    """Campaigns, newest first (admins and marketers).

    Filter by `state` (draft, scheduled, paused, completed, cancelled) and `kind` (broadcast or
    re-engagement); paged with `limit` and `offset`. `next_run_at` is when the next send is due, and
    `paused_reason` says why the scheduler paused one, if it did.
    """
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
    """Create a draft campaign (a broadcast to a segment, or a re-engagement sequence).

    Admins and marketers. A broadcast needs channels with a template each, an audience (`segment_id`,
    or `rules` to save a new segment) and may have `send_at` (once) or `cron` (repeating, in the
    program's time zone). A re-engagement campaign has `steps` instead, sent per customer as they
    lapse; the default sequence when omitted. Nothing is sent until the draft is scheduled.
    """
    data = body.model_dump(exclude_none=True)
    campaign = service.create_campaign(
        session=get_session(), program=_program(), data=data, created_by_id=current_user_id(), now=utcnow()
    )
    return campaign_read(campaign)


@bp.get("/campaigns/calendar")
@endpoint(roles=MARKETING, query=schemas.CalendarQuery, response=list[schemas.CalendarEntry], tags=["campaigns"])
def campaign_calendar(query: schemas.CalendarQuery):
    """Sends in a date range (UTC days): those that happened and those scheduled.

    Admins and marketers. `start` is the first day and `days` how many (at most 93). Past sends come
    from the send records; future ones are worked out from `send_at` or the cron schedule of the
    scheduled and paused broadcasts, so a paused one still shows where it would send. `sent` tells
    the two apart.
    """
    start = datetime.combine(query.start, time(), tzinfo=UTC)
    entries = service.calendar(
        session=get_session(), program=_program(), start=start, end=start + timedelta(days=query.days), now=utcnow()
    )
    return [schemas.CalendarEntry.model_validate(entry) for entry in entries]


@bp.get("/campaigns/<int:campaign_id>")
@endpoint(roles=MARKETING, response=schemas.CampaignRead, tags=["campaigns"], errors=[404])
def get_campaign(campaign_id: int):
    """One campaign of the program (admins and marketers).

    404 when no campaign of this program has the id. Its numbers are in /results, its re-engagement
    customers in /enrollments.
    """
    return campaign_read(_campaign(campaign_id))


@bp.patch("/campaigns/<int:campaign_id>")
@endpoint(
    roles=MARKETING, body=schemas.CampaignUpdate, response=schemas.CampaignRead, tags=["campaigns"], errors=[404, 409]
)
def update_campaign(campaign_id: int, body: schemas.CampaignUpdate):
    """Change a draft or paused campaign (admins and marketers).

    Only the fields sent change. Any other state is a 409: pause a scheduled campaign first, so
    nothing changes under a send that may be running. A broadcast cannot take steps, nor a
    re-engagement campaign channels or a schedule (422), and every channel must keep a template.
    """
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
    """Make a draft live: a broadcast waits for its time, a sequence starts enrolling tonight.

    Admins and marketers. A broadcast without `send_at` or `cron`, or with a `send_at` in the past,
    is a 422. Only a draft can be scheduled (409 otherwise; a paused campaign is resumed instead).
    """
    return _transition(campaign_id, "schedule")


@bp.post("/campaigns/<int:campaign_id>/pause")
@endpoint(roles=MARKETING, response=schemas.CampaignRead, tags=["campaigns"], errors=[404, 409])
def pause_campaign(campaign_id: int):
    """Stop sending until resumed (a send in progress stops after its current batch).

    Admins and marketers. Only a scheduled campaign can be paused (409 otherwise). The campaign can
    then be changed, and resumed where it stopped.
    """
    return _transition(campaign_id, "pause")


@bp.post("/campaigns/<int:campaign_id>/resume")
@endpoint(roles=MARKETING, response=schemas.CampaignRead, tags=["campaigns"], errors=[404, 409])
def resume_campaign(campaign_id: int):
    """Carry on; a once-send whose time passed goes now, a cron one waits for its next time.

    Admins and marketers. Only a paused campaign can be resumed (409 otherwise); a cron campaign
    skips the sends it missed rather than sending them all at once. A send that was paused midway
    carries on from where it stopped.
    """
    return _transition(campaign_id, "resume")


@bp.post("/campaigns/<int:campaign_id>/cancel")
@endpoint(roles=MARKETING, response=schemas.CampaignRead, tags=["campaigns"], errors=[404, 409])
def cancel_campaign(campaign_id: int):
    """End the campaign for good: no more sends, customers leave its sequence.

    Admins and marketers. A send in progress stops, and a cancelled campaign cannot be scheduled
    again (409 for one already completed or cancelled). Its results stay readable.
    """
    return _transition(campaign_id, "cancel")


@bp.get("/campaigns/<int:campaign_id>/results")
@endpoint(
    roles=MARKETING, query=schemas.ResultsQuery, response=schemas.CampaignResults, tags=["campaigns"], errors=[404]
)
def campaign_results(campaign_id: int, query: schemas.ResultsQuery):
    """Targeted, held out, sent, delivered, failed, suppressed, opted out, returns and uplift vs holdout.

    Admins and marketers. Totals and one row per step. A customer returned when they bought (and
    did not refund it all) within `days` of being targeted, the campaign's `return_days` by default.
    The uplift is the treatment group's return rate minus the holdout's with a 95% interval, null
    while either group is empty. `window_complete` is false until every target's days are over, so
    earlier numbers can still move.
    """
    return schemas.CampaignResults.model_validate(
        results.campaign_results(session=get_session(), campaign=_campaign(campaign_id), days=query.days, now=utcnow())
    )


@bp.get("/campaigns/<int:campaign_id>/enrollments")
@endpoint(roles=MARKETING, query=schemas.Page, response=list[schemas.EnrollmentRead], tags=["campaigns"], errors=[404])
def campaign_enrollments(campaign_id: int, query: schemas.Page):
    """Customers in (or through) a re-engagement sequence, newest first.

    Admins and marketers. One row per customer the campaign enrolled: whether they are in the
    holdout, which step comes next and when, and when they returned. A broadcast has none.
    """
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
    """Customers per status for each night, enrolments per day, and the latest model fit.

    Admins and marketers; the dashboard's customer charts. Statuses (new, active, lapsing, lapsed,
    won back) come from the nightly scoring, so the latest day is last night's. `days` looks back at
    most 730 days; `model` holds the latest night's BG/NBD and MBG/NBD fit, empty when no night in
    the range was scored.
    """
    since = (utcnow() - timedelta(days=query.days)).date()
    return schemas.ScoreTrend.model_validate(
        results.score_trend(session=get_session(), program_id=_program().id, since=since)
    )


@bp.get("/customers/<int:customer_id>/scores")
@endpoint(roles=MARKETING, query=schemas.Page, response=list[schemas.CustomerScoreRead], tags=["scores"], errors=[404])
def customer_scores(customer_id: int, query: schemas.Page):
    """A customer's nightly scores, newest first: how their status and numbers moved.

    Admins and marketers. Each night's recency, visits, spend, RFM scores, visit rhythm and P(alive),
    as the segments saw them that day. A customer enrolled since the last scoring has none yet.
    """
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
    """A customer's tags (for segments), in alphabetical order.

    Admins and marketers. Tags are free labels staff put on customers (`vip`, `staff`) for segment
    rules to select; they are stored lower-cased.
    """
    return _tags(get_or_404(get_session(), Customer, customer_id).id)


@bp.put("/customers/<int:customer_id>/tags/<tag>")
@endpoint(roles=MARKETING, response=schemas.TagsRead, tags=["customers"], errors=[404, 422])
def add_customer_tag(customer_id: int, tag: str):
    """Tag a customer (lower-cased; tagging twice changes nothing).

    Admins and marketers. A tag is 1 to 40 letters, digits, spaces, `_`, `.` or `-`, starting with a
    letter or digit (422 otherwise). The answer is the customer's tags after the change.
    """
    customer = get_or_404(get_session(), Customer, customer_id)
    value = normalize_tag(schemas.TagValue.validate_python(tag))
    session = get_session()
    tagging = insert_unless_exists(session.get_bind().dialect.name, table_of(CustomerTag), ["tag", "customer_id"])
    session.execute(tagging.values(customer_id=customer.id, tag=value, created_at=utcnow()))
    return _tags(customer.id)


@bp.delete("/customers/<int:customer_id>/tags/<tag>")
@endpoint(roles=MARKETING, response=schemas.TagsRead, tags=["customers"], errors=[404])
def remove_customer_tag(customer_id: int, tag: str):
    """Remove a tag from a customer (admins and marketers).

    Removing a tag the customer does not have changes nothing and is not an error; the answer is the
    customer's tags after the change. 404 only when the customer does not exist.
    """
    customer = get_or_404(get_session(), Customer, customer_id)
    get_session().execute(
        delete(CustomerTag).where(CustomerTag.customer_id == customer.id, CustomerTag.tag == normalize_tag(tag))
    )
    return _tags(customer.id)
