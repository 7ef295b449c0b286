"""The segment rule language: JSON rules compiled to one SQL query over customers.

A rule is a group or a condition:

    {"all": [rule, ...]}   every rule holds        {"any": [rule, ...]}   at least one holds
    {"not": rule}          the rule does not hold
    {"field": "...", "op": "...", "value": ..., ...options}

Conditions (`within_days` counts purchases live over the last N days; without it, visits and
spend are the nightly scores' window):

    tier              eq ne in not_in      tier names
    points            eq ne lt lte gt gte between      the balance
    status            eq ne in not_in      new active lapsing lapsed won_back
    r_score f_score m_score                numeric ops, 1-5 (RFM quintiles)
    days_since_visit visits spend overdue p_alive p_return       numeric ops
    store             eq in not_in         store ids the customer bought at (within_days)
    distance_km       lt lte               bought at a store within this distance of store_id
                                           (or latitude/longitude) (within_days)
    consent           eq                   true/false for `channel` (sms push voice email location)
    enrolled          eq lt lte gt gte between     ISO dates in the program's time zone
    tag               eq in not_in all     tags (eq: has this one; in: any; all: every one)

Score fields are as of the latest nightly scoring; a customer without a score matches no
condition on them (and matches their negation). A rule that cannot be compiled raises
InvalidSegment naming where it is ("rules.all[1].value") and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import Session, aliased

from app.campaigns.models import CustomerScore, CustomerStatus, CustomerTag, ScoringRun
from app.errors import Unprocessable
from app.loyalty.models import Channel, Consent, Customer, Program, Purchase, Store, Tier

MAX_DEPTH = 8
MAX_CONDITIONS = 100
NUMERIC_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "between")
SET_OPS = ("eq", "ne", "in", "not_in")


class InvalidSegment(Unprocessable):
    slug, title = "invalid-segment", "Invalid segment rule"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(
            f"Rule {path}: {message}", rule=path, errors=[{"field": path, "message": message, "type": "invalid_rule"}]
        )


@dataclass
class Context:
    session: Session
    program: Program
    now: datetime
    as_of: date | None  # the latest scoring; None before the first night
    score: type[CustomerScore]
    conditions: int = 0

    @property
    def today(self) -> date:
        return self.now.astimezone(ZoneInfo(self.program.timezone)).date()


def latest_scoring(*, session: Session, program_id: int) -> date | None:
    return session.scalar(
        select(func.max(ScoringRun.as_of)).where(
            ScoringRun.program_id == program_id, ScoringRun.finished_at.is_not(None)
        )
    )


def segment_query(*, session: Session, program: Program, rules: dict, now: datetime) -> Select:
    """SELECT customers.id of the program's customers matching `rules` (raises InvalidSegment)."""
    score = aliased(CustomerScore, name="score")
    as_of = latest_scoring(session=session, program_id=program.id)
    ctx = Context(session=session, program=program, now=now, as_of=as_of, score=score)
    condition = compile_rule(rules, "rules", ctx, depth=0)
    joined = and_(
        score.program_id == Customer.program_id,
        score.customer_id == Customer.id,
        score.as_of == (as_of or date(1, 1, 1)),
    )
    # An erased customer is nobody to market to: never in a segment.
    return (
        select(Customer.id)
        .select_from(Customer)
        .outerjoin(score, joined)
        .where(Customer.program_id == program.id, Customer.erased_at.is_(None), condition)
    )


def validate(*, session: Session, program: Program, rules: dict, now: datetime) -> None:
    segment_query(session=session, program=program, rules=rules, now=now)


# --- groups ----------------------------------------------------------------------------------


def compile_rule(rule, path: str, ctx: Context, *, depth: int) -> ColumnElement[bool]:
    if not isinstance(rule, dict):
        raise InvalidSegment(path, "a rule is an object: a group (all, any, not) or a condition (field, op, value).")
    if depth > MAX_DEPTH:
        raise InvalidSegment(path, f"rules nest at most {MAX_DEPTH} deep.")
    groups = [key for key in ("all", "any", "not") if key in rule]
    if groups:
        if len(rule) != 1:
            raise InvalidSegment(path, f"a group has exactly one key ({groups[0]}); found {sorted(rule)}.")
        return _group(groups[0], rule[groups[0]], f"{path}.{groups[0]}", ctx, depth)
    if "field" not in rule:
        raise InvalidSegment(path, "a rule needs 'all', 'any', 'not' or 'field'.")
    ctx.conditions += 1
    if ctx.conditions > MAX_CONDITIONS:
        raise InvalidSegment(path, f"a segment has at most {MAX_CONDITIONS} conditions.")
    return _condition(rule, path, ctx)


def _group(kind: str, body, path: str, ctx: Context, depth: int) -> ColumnElement[bool]:
    if kind == "not":
        return not_(compile_rule(body, path, ctx, depth=depth + 1))
    if not isinstance(body, list) or not body:
        raise InvalidSegment(path, f"'{kind}' takes a non-empty list of rules.")
    parts = [compile_rule(item, f"{path}[{i}]", ctx, depth=depth + 1) for i, item in enumerate(body)]
    return and_(true(), *parts) if kind == "all" else or_(false(), *parts)


# --- conditions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    ops: tuple[str, ...]
    build: Callable[[dict, str, Context], ColumnElement[bool]]
    options: tuple[str, ...] = ()


def _condition(rule: dict, path: str, ctx: Context) -> ColumnElement[bool]:
    name = rule["field"]
    spec = FIELDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise InvalidSegment(f"{path}.field", f"unknown field {name!r}; the fields are {', '.join(FIELDS)}.")
    extra = set(rule) - {"field", "op", "value", *spec.options}
    if extra:
        raise InvalidSegment(path, f"unexpected keys {sorted(extra)} for field '{name}'.")
    if rule.get("op") not in spec.ops:
        raise InvalidSegment(
            f"{path}.op", f"field '{name}' takes the operators {', '.join(spec.ops)}; got {rule.get('op')!r}."
        )
    if "value" not in rule:
        raise InvalidSegment(path, "a condition needs a 'value'.")
    # Unscored customers (NULL) fail a condition instead of making it unknown, so NOT works.
    return func.coalesce(spec.build(rule, path, ctx), false())


def _number(value, path: str, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidSegment(f"{path}.value", f"expected a number, got {value!r}.")
    if integer and value != int(value):
        raise InvalidSegment(f"{path}.value", f"expected a whole number, got {value!r}.")
    return value


def _compare(column, rule: dict, path: str, *, convert=_number) -> ColumnElement[bool]:
    op, value = rule["op"], rule["value"]
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise InvalidSegment(f"{path}.value", "'between' takes [low, high].")
        low, high = (convert(v, path) for v in value)
        if low > high:
            raise InvalidSegment(f"{path}.value", f"'between' needs low <= high; got {value!r}.")
        return column.between(low, high)
    value = convert(value, path)
    return {
        "eq": column == value,
        "ne": column != value,
        "lt": column < value,
        "lte": column <= value,
        "gt": column > value,
        "gte": column >= value,
    }[op]


def _values(rule: dict, path: str) -> list:
    value = rule["value"]
    values = value if isinstance(value, list) else [value]
    if not values or (rule["op"] in ("eq", "ne") and isinstance(value, list)):
        raise InvalidSegment(
            f"{path}.value",
            f"'{rule['op']}' takes " + ("one value." if rule["op"] in ("eq", "ne") else "a non-empty list."),
        )
    return values


def _in_set(column, rule: dict, values: list) -> ColumnElement[bool]:
    positive = rule["op"] in ("eq", "in")
    return column.in_(values) if positive else or_(column.is_(None), column.not_in(values))


def _tier(rule, path, ctx):
    names = _values(rule, path)
    tiers = dict(ctx.session.execute(select(Tier.name, Tier.id).where(Tier.program_id == ctx.program.id)).all())
    unknown = [name for name in names if name not in tiers]
    if unknown:
        raise InvalidSegment(f"{path}.value", f"unknown tier {unknown[0]!r}; the tiers are {', '.join(tiers)}.")
    return _in_set(Customer.tier_id, rule, [tiers[name] for name in names])


def _status(rule, path, ctx):
    values = _values(rule, path)
    known = [status.value for status in CustomerStatus]
    for value in values:
        if value not in known:
            raise InvalidSegment(f"{path}.value", f"unknown status {value!r}; the statuses are {', '.join(known)}.")
    column = ctx.score.status
    return column.in_(values) if rule["op"] in ("eq", "in") else column.not_in(values)


def _score(column_name: str, *, low=None, high=None, integer=False):
    def build(rule, path, ctx):
        def convert(value, where):
            number = _number(value, where, integer=integer)
            if (low is not None and number < low) or (high is not None and number > high):
                raise InvalidSegment(f"{where}.value", f"'{rule['field']}' is between {low} and {high}.")
            return number

        return _compare(getattr(ctx.score, column_name), rule, path, convert=convert)

    return build


def _days_since_visit(rule, path, ctx):
    # The score's recency is as of its night; add the days since.
    behind = (ctx.today - ctx.as_of).days if ctx.as_of else 0
    return _compare(ctx.score.recency_days + behind, rule, path)


def _within(rule, path, ctx) -> datetime | None:
    days = rule.get("within_days")
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InvalidSegment(f"{path}.within_days", f"expected a whole number of days >= 1, got {days!r}.")
    return ctx.now - timedelta(days=days)


def _purchases(since: datetime | None, *conditions) -> list:
    where = [Purchase.customer_id == Customer.id, Purchase.amount > Purchase.refunded_amount, *conditions]
    if since is not None:
        where.append(Purchase.created_at > since)
    return where


def _visits(rule, path, ctx):
    since = _within(rule, path, ctx)
    if since is None:
        return _compare(ctx.score.visits, rule, path)
    count = select(func.count(Purchase.id)).where(*_purchases(since)).scalar_subquery()
    return _compare(count, rule, path)


def _spend(rule, path, ctx):
    since = _within(rule, path, ctx)
    if since is None:
        return _compare(ctx.score.spend_cents / 100.0, rule, path)
    total = (
        select(func.coalesce(func.sum(Purchase.amount - Purchase.refunded_amount), 0))
        .where(*_purchases(since))
        .scalar_subquery()
    )
    return _compare(total, rule, path)


def _store_ids(ctx: Context) -> dict[int, Store]:
    return {store.id: store for store in ctx.session.scalars(select(Store).where(Store.program_id == ctx.program.id))}


def _bought_at(store_ids: list[int], since: datetime | None) -> ColumnElement[bool]:
    return exists().where(*_purchases(since, Purchase.store_id.in_(store_ids)))


def _store(rule, path, ctx):
    ids = _values(rule, path)
    stores = _store_ids(ctx)
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, int) or value not in stores:
            raise InvalidSegment(f"{path}.value", f"there is no store {value!r} in this program.")
    found = _bought_at(ids, _within(rule, path, ctx))
    return found if rule["op"] in ("eq", "in") else not_(found)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def _distance(rule, path, ctx):
    stores = _store_ids(ctx)
    if "store_id" in rule:
        origin = stores.get(rule["store_id"]) if isinstance(rule["store_id"], int) else None
        if origin is None:
            raise InvalidSegment(f"{path}.store_id", f"there is no store {rule['store_id']!r} in this program.")
        lat, lon = origin.latitude, origin.longitude
    elif "latitude" in rule and "longitude" in rule:
        lat, lon = _number(rule["latitude"], path), _number(rule["longitude"], path)
    else:
        raise InvalidSegment(path, "'distance_km' needs a store_id, or a latitude and a longitude.")
    limit = _number(rule["value"], path)
    near = [
        s.id
        for s in stores.values()
        if (d := haversine_km(lat, lon, s.latitude, s.longitude)) < limit or (rule["op"] == "lte" and d == limit)
    ]
    return _bought_at(near, _within(rule, path, ctx)) if near else false()


def _consent(rule, path, ctx):
    channel = rule.get("channel")
    if channel not in {c.value for c in Channel}:
        raise InvalidSegment(
            f"{path}.channel", f"unknown channel {channel!r}; the channels are {', '.join(c.value for c in Channel)}."
        )
    if not isinstance(rule["value"], bool):
        raise InvalidSegment(f"{path}.value", "'consent' takes true or false.")
    later = aliased(Consent)
    granted = exists().where(  # the customer's latest answer for the channel is yes
        Consent.customer_id == Customer.id,
        Consent.channel == channel,
        Consent.granted.is_(True),
        ~exists().where(later.customer_id == Consent.customer_id, later.channel == channel, later.id > Consent.id),
    )
    return granted if rule["value"] else not_(granted)


def _local_midnight(value, path: str, ctx: Context) -> datetime:
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidSegment(f"{path}.value", f"expected an ISO date such as 2026-01-31, got {value!r}.") from None
    return datetime.combine(day, time(), tzinfo=ZoneInfo(ctx.program.timezone)).astimezone(UTC)


def _enrolled(rule, path, ctx):
    column = Customer.created_at
    op, value = rule["op"], rule["value"]
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise InvalidSegment(f"{path}.value", "'between' takes [first day, last day].")
        start, end = _local_midnight(value[0], path, ctx), _local_midnight(value[1], path, ctx)
        return and_(column >= start, column < end + timedelta(days=1))
    start = _local_midnight(value, path, ctx)
    end = start + timedelta(days=1)
    return {
        "eq": and_(column >= start, column < end),
        "lt": column < start,
        "lte": column < end,
        "gt": column >= end,
        "gte": column >= start,
    }[op]


def _tag(rule, path, ctx):
    tags = _values(rule, path)
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidSegment(f"{path}.value", f"tags are non-empty strings, got {tag!r}.")
    tags = [normalize_tag(tag) for tag in tags]

    def has(*wanted):
        return exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag.in_(wanted))

    if rule["op"] == "all":
        return and_(*(has(tag) for tag in tags))
    return not_(has(*tags)) if rule["op"] == "not_in" else has(*tags)


def normalize_tag(tag: str) -> str:
    return tag.strip().lower()


FIELDS: dict[str, Field] = {
    "tier": Field(SET_OPS, _tier),
    "points": Field(NUMERIC_OPS, lambda rule, path, ctx: _compare(Customer.points_balance, rule, path)),
    "status": Field(SET_OPS, _status),
    "r_score": Field(NUMERIC_OPS, _score("r_score", low=1, high=5, integer=True)),
    "f_score": Field(NUMERIC_OPS, _score("f_score", low=1, high=5, integer=True)),
    "m_score": Field(NUMERIC_OPS, _score("m_score", low=1, high=5, integer=True)),
    "days_since_visit": Field(NUMERIC_OPS, _days_since_visit),
    "visits": Field(NUMERIC_OPS, _visits, options=("within_days",)),
    "spend": Field(NUMERIC_OPS, _spend, options=("within_days",)),
    "overdue": Field(NUMERIC_OPS, _score("overdue_factor", low=0)),
    "p_alive": Field(NUMERIC_OPS, _score("p_alive", low=0, high=1)),
    "p_return": Field(NUMERIC_OPS, _score("p_return", low=0, high=1)),
    "store": Field(("eq", "in", "not_in"), _store, options=("within_days",)),
    "distance_km": Field(("lt", "lte"), _distance, options=("store_id", "latitude", "longitude", "within_days")),
    "consent": Field(("eq",), _consent, options=("channel",)),
    "enrolled": Field(("eq", "lt", "lte", "gt", "gte", "between"), _enrolled),
    "tag": Field(("eq", "in", "not_in", "all"), _tag),
}
