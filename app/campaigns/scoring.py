"""Customer scoring, in SQL: RFM quintiles, the customer's rhythm and overdue factor, a status,
and the BG/NBD probability that the customer is still active.

The same statements run on PostgreSQL and SQLite and give the same answers: days are integer
day numbers, money is integer cents, quintiles are integer arithmetic on RANK() (ties share a
score), medians are picked with ROW_NUMBER(), and the floating point is the same IEEE double
arithmetic on both. Only the source of visits differs: a program's purchases, or an offline
history loaded into SQLite (`score_history`, what `flask campaigns score --transactions` runs).

Nothing here loads customers into Python. Python sees the histogram of gaps (one row per gap
length, for the program's median) and a stable sample of (x, t_x, T) patterns for the model
fit; every per-customer number is computed by the database.

Definitions (day numbers in the program's time zone; a visit is a day with a purchase that was
not fully refunded):

- recency = as-of day - last visit day; visits and spend count the window's days and cents.
- own median gap: the median of the days between consecutive visits in the window.
- rhythm: the own median blended with the program's typical gap (the median of all gaps) as if
  the program contributed `rhythm_prior_gaps` gaps; one-time visitors have the program's gap.
  A median of two gaps says little; twenty gaps say it all.
- overdue factor = recency / rhythm. Status: new (enrolled within `new_days`), lapsed (overdue
  over `lapsed_threshold`, or no visit in the window), lapsing (over `lapsing_threshold`),
  won back (not overdue, and the last visit closed a gap that had been lapsing), else active.
- p_alive: BG/NBD (Fader, Hardie & Lee 2005) for customers with repeat visits. BG/NBD puts
  every one-time visitor alive by construction (drop-out happens only after a repeat
  purchase), so for them the MBG/NBD (Batislam et al. 2007), fitted on the same sample, which
  lets a customer drop out after the first purchase, is used instead.
- p_return: p_alive x P(at least one visit within `return_horizon_days` | alive).
"""

from __future__ import annotations

import logging
import math
import re
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, bindparam, text
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from app.campaigns import events
from app.campaigns.config import CampaignSettings
from app.db import UTCDateTime

log = logging.getLogger(__name__)

EPOCH = date(1970, 1, 1)
_HASH_MODULUS = 1_000_003  # for the stable sample: (customer_id * 2654435761) % this
_TYPED: dict[str, TypeEngine[Any]] = {"until": UTCDateTime(), "since": UTCDateTime(), "as_of": Date()}


def epoch_day(day: date) -> int:
    return (day - EPOCH).days


@dataclass(frozen=True)
class ScoringRules:
    window_days: int = 365
    lapsing_threshold: float = 2.0
    lapsed_threshold: float = 5.0
    new_days: int = 30
    rhythm_prior_gaps: float = 3.0
    fallback_gap_days: float = 30.0
    return_horizon_days: int = 30
    model_sample_size: int = 100_000
    model_min_customers: int = 200

    @classmethod
    def from_settings(cls, settings: CampaignSettings) -> ScoringRules:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Source:
    """SQL for (customer_id, day, cents) visits and (customer_id, enrolled_day) customers."""

    visits: str
    customers: str
    params: dict = field(default_factory=dict)


@dataclass
class Prepared:
    program_gap: float
    model: dict  # {"bgnbd": {...}, "mbgnbd": {...}} or {"skipped": reason}
    customers_with_visits: int
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, for the log


@contextmanager
def _stage(seconds: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    seconds[name] = round(time.perf_counter() - started, 2)


# --- sources ---------------------------------------------------------------------------------


def _day_sql(dialect: str, column: str) -> str:
    """The local day number of a UTC timestamp column, shifted by :tz_offset seconds."""
    if dialect == "postgresql":
        return f"CAST(FLOOR((EXTRACT(EPOCH FROM {column}) + :tz_offset) / 86400) AS INTEGER)"
    return f"CAST((CAST(strftime('%s', {column}) AS INTEGER) + :tz_offset) / 86400 AS INTEGER)"


def program_source(*, dialect: str, program_id: int, now: datetime, first_day: int, tz_offset: int) -> Source:
    """The program's purchases from local day `first_day` up to `now`. The window is cut on the
    timestamp itself (not on the computed day), so the planner can estimate it and use indexes."""
    since = datetime.fromtimestamp(first_day * 86400 - tz_offset, UTC)
    visits = f"""
        SELECT p.customer_id AS customer_id, {_day_sql(dialect, "p.created_at")} AS day,
               CAST(ROUND((p.amount - p.refunded_amount) * 100) AS BIGINT) AS cents
        FROM purchases p JOIN customers c ON c.id = p.customer_id
        WHERE c.program_id = :program_id AND p.amount > p.refunded_amount
          AND p.created_at >= :since AND p.created_at <= :until"""
    customers = f"""
        SELECT id AS customer_id, {_day_sql(dialect, "created_at")} AS enrolled_day
        FROM customers WHERE program_id = :program_id"""
    return Source(visits, customers, {"program_id": program_id, "until": now, "since": since, "tz_offset": tz_offset})


OFFLINE_SOURCE = Source(
    visits="SELECT customer_id, day, cents FROM offline_visits WHERE day > :start_day AND day <= :as_of_day",
    customers="SELECT customer_id, MIN(day) AS enrolled_day FROM offline_visits GROUP BY customer_id",
)


# --- the statements --------------------------------------------------------------------------


def _execute(session: Session, sql: str, params: dict):
    """Run `sql` with the params it names; timestamps and dates typed, so SQLite stores them right."""
    named = set(re.findall(r"(?<!:):(\w+)", sql))
    statement = text(sql)
    typed = [bindparam(name, type_=kind) for name, kind in _TYPED.items() if name in named]
    if typed:
        statement = statement.bindparams(*typed)
    return session.execute(statement, {name: value for name, value in params.items() if name in named})


def _temp_table(dialect: str, name: str) -> str:
    # ON COMMIT DROP: a failed run leaves nothing behind on PostgreSQL (SQLite rolls DDL back).
    return f"CREATE TEMP TABLE {name} ON COMMIT DROP AS" if dialect == "postgresql" else f"CREATE TEMP TABLE {name} AS"


def _visits_sql(dialect: str, source: Source) -> str:
    return f"""{_temp_table(dialect, "sc_visits")}
        WITH raw AS ({source.visits}),
        v AS (
            SELECT customer_id, day, CAST(SUM(cents) AS BIGINT) AS cents FROM raw
            GROUP BY customer_id, day
        )
        SELECT customer_id, day, cents,
               day - LAG(day) OVER w AS gap,
               CASE WHEN LEAD(day) OVER w IS NULL THEN 1 ELSE 0 END AS is_last
        FROM v
        WINDOW w AS (PARTITION BY customer_id ORDER BY day)"""


def _customers_sql(dialect: str) -> str:
    return f"""{_temp_table(dialect, "sc_customers")}
        WITH ranked AS (
            SELECT customer_id, gap,
                   ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY gap) AS rn,
                   COUNT(*) OVER (PARTITION BY customer_id) AS n
            FROM sc_visits WHERE gap IS NOT NULL
        ),
        medians AS (
            SELECT customer_id, AVG(CAST(gap AS DOUBLE PRECISION)) AS median_gap
            FROM ranked WHERE rn = (n + 1) / 2 OR rn = (n + 2) / 2
            GROUP BY customer_id
        ),
        agg AS (
            SELECT customer_id, MIN(day) AS first_day, MAX(day) AS last_day, COUNT(*) AS visits,
                   CAST(SUM(cents) AS BIGINT) AS cents,
                   MAX(CASE WHEN is_last = 1 THEN gap END) AS last_gap
            FROM sc_visits GROUP BY customer_id
        )
        SELECT agg.customer_id, agg.first_day, agg.last_day, agg.visits, agg.cents, agg.last_gap,
               medians.median_gap,
               1 + 5 * (RANK() OVER (ORDER BY agg.last_day) - 1) / COUNT(*) OVER () AS r_score,
               1 + 5 * (RANK() OVER (ORDER BY agg.visits) - 1) / COUNT(*) OVER () AS f_score,
               1 + 5 * (RANK() OVER (ORDER BY agg.cents) - 1) / COUNT(*) OVER () AS m_score
        FROM agg LEFT JOIN medians ON medians.customer_id = agg.customer_id"""


_GAP_HISTOGRAM = "SELECT gap, COUNT(*) FROM sc_visits WHERE gap IS NOT NULL GROUP BY gap"
_MODEL_SAMPLE = """
    SELECT visits - 1 AS x, last_day - first_day AS t_x, :as_of_day - first_day AS t, COUNT(*) AS n
    FROM sc_customers WHERE (customer_id * 2654435761) % 1000003 < :cut
    GROUP BY 1, 2, 3"""

# p_alive and p_return from the fitted parameters (see the module docstring). Exponents are
# clamped: PostgreSQL raises on exp() overflow and underflow where SQLite gives inf or 0.
_MODEL_TERMS = """,
            CASE WHEN visits IS NULL THEN NULL
                 WHEN visits > 1 THEN LN(:bg_a / (:bg_b + visits - 2))
                      + (:bg_r + visits - 1) * LN((:bg_alpha + tenure) / (:bg_alpha + tenure - recency))
                 ELSE LN(:mbg_a / :mbg_b) + :mbg_r * LN((:mbg_alpha + tenure) / :mbg_alpha)
            END AS z,
            CASE WHEN visits IS NULL THEN NULL
                 WHEN visits > 1 THEN (:bg_r + visits - 1) * LN((:bg_alpha + tenure) / (:bg_alpha + tenure + :horizon))
                 ELSE :mbg_r * LN((:mbg_alpha + tenure) / (:mbg_alpha + tenure + :horizon))
            END AS quiet_log"""
_NO_MODEL_TERMS = ", CAST(NULL AS DOUBLE PRECISION) AS z, CAST(NULL AS DOUBLE PRECISION) AS quiet_log"

SCORE_COLUMNS = (
    "customer_id",
    "recency_days",
    "tenure_days",
    "visits",
    "spend_cents",
    "r_score",
    "f_score",
    "m_score",
    "median_gap_days",
    "rhythm_days",
    "last_gap_days",
    "overdue_factor",
    "status",
    "p_alive",
    "p_return",
)


def _scores_select(source: Source, *, with_model: bool) -> str:
    return f"""
        WITH base AS (
            SELECT c.customer_id, c.enrolled_day, s.visits, s.cents, s.last_gap, s.median_gap,
                   s.r_score, s.f_score, s.m_score,
                   :as_of_day - s.last_day AS recency, :as_of_day - s.first_day AS tenure,
                   CASE WHEN s.visits IS NULL THEN NULL
                        WHEN s.visits > 1 THEN ((s.visits - 1) * s.median_gap + :prior_gaps * :program_gap)
                                               / (s.visits - 1 + :prior_gaps)
                        ELSE :program_gap
                   END AS rhythm
            FROM ({source.customers}) c LEFT JOIN sc_customers s ON s.customer_id = c.customer_id
        ),
        measured AS (
            SELECT base.*, recency / rhythm AS overdue{_MODEL_TERMS if with_model else _NO_MODEL_TERMS}
            FROM base
        ),
        alive AS (
            SELECT measured.*,
                   CASE WHEN z IS NULL THEN NULL WHEN z > 50 THEN 0.0 WHEN z < -50 THEN 1.0
                        ELSE 1.0 / (1.0 + EXP(z)) END AS p_alive,
                   CASE WHEN quiet_log IS NULL THEN NULL WHEN quiet_log < -50 THEN 0.0
                        ELSE EXP(quiet_log) END AS p_quiet
            FROM measured
        )
        SELECT customer_id, recency AS recency_days, tenure AS tenure_days,
               COALESCE(visits, 0) AS visits, COALESCE(cents, 0) AS spend_cents,
               r_score, f_score, m_score, median_gap AS median_gap_days, rhythm AS rhythm_days,
               last_gap AS last_gap_days, overdue AS overdue_factor,
               CASE WHEN visits IS NULL THEN
                         CASE WHEN enrolled_day > :as_of_day - :new_days THEN 'new' ELSE 'lapsed' END
                    WHEN enrolled_day > :as_of_day - :new_days THEN 'new'
                    WHEN overdue > :lapsed_threshold THEN 'lapsed'
                    WHEN overdue > :lapsing_threshold THEN 'lapsing'
                    WHEN last_gap > :lapsing_threshold * rhythm THEN 'won_back'
                    ELSE 'active'
               END AS status,
               p_alive, p_alive * (1.0 - p_quiet) AS p_return
        FROM alive"""


# --- the pipeline ----------------------------------------------------------------------------


def _median_of_histogram(rows: Iterable[tuple[int, int]]) -> float | None:
    counts = sorted((int(gap), int(n)) for gap, n in rows)
    total = sum(n for _, n in counts)
    if not total:
        return None
    wanted = sorted({(total + 1) // 2, (total + 2) // 2})  # 1-based positions of the middle
    values, seen = [], 0
    for gap, n in counts:
        seen += n
        while wanted and wanted[0] <= seen:
            values.append(gap)
            wanted.pop(0)
    return sum(values) / len(values)


def _fit(fitter, x, t_x, t, weights) -> dict | str:
    """The fitted parameters, or why there are none. A degenerate population (everyone with the
    same drop-out chance sends a and b to infinity) is retried with lifetimes' suggested penalizer."""
    failure = ""
    for penalizer in (0.0, 0.01):
        try:
            with warnings.catch_warnings():
                # The optimizer probes extreme parameters on its way (overflow in exp, log of 0):
                # harmless, and the result is checked below.
                warnings.simplefilter("ignore", RuntimeWarning)
                model = fitter(penalizer_coef=penalizer).fit(x, t_x, t, weights=weights)
        except Exception as exc:  # a fit that fails leaves p_alive empty tonight, nothing worse
            failure = " ".join(str(exc).split())
            continue
        params = {key: float(value) for key, value in model.params_.items()}
        if all(math.isfinite(v) and v > 0 for v in params.values()):
            return {**params, "penalizer": penalizer}
        failure = f"unusable parameters {params}"
    log.warning("%s fit failed: %s", fitter.__name__, failure)
    return failure


def fit_models(rows: list[tuple[int, int, int, int]], *, min_customers: int) -> dict:
    """Fit BG/NBD and MBG/NBD on (x, t_x, T, count) patterns; the parameters, or why not."""
    customers = sum(row[3] for row in rows)
    if customers < min_customers:
        return {"skipped": f"{customers} customers in the sample; the fit needs {min_customers}"}
    if not any(row[0] > 0 for row in rows):
        return {"skipped": "no customer has a repeat visit yet"}
    import numpy as np
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter

    x, t_x, t, weights = (np.asarray(column, dtype=float) for column in zip(*rows, strict=True))
    fitted: dict[str, Any] = {}
    for name, fitter in (("bgnbd", BetaGeoFitter), ("mbgnbd", ModifiedBetaGeoFitter)):
        params = _fit(fitter, x, t_x, t, weights.astype(int))
        if isinstance(params, str):
            return {"skipped": f"{name}: {params}"}
        fitted[name] = params
    fitted["customers"] = customers
    return fitted


def prepare(*, session: Session, source: Source, as_of_day: int, rules: ScoringRules) -> Prepared:
    """Build the per-visit and per-customer temp tables; measure the program's gap; fit the models."""
    dialect = session.get_bind().dialect.name
    params = {**source.params, "as_of_day": as_of_day, "start_day": as_of_day - rules.window_days}
    seconds: dict[str, float] = {}
    drop_temp_tables(session)
    with _stage(seconds, "visits"):
        _execute(session, _visits_sql(dialect, source), params)
    with _stage(seconds, "customers"):
        _execute(session, _customers_sql(dialect), params)
        session.execute(text("CREATE INDEX ix_sc_customers_customer_id ON sc_customers (customer_id)"))
        if dialect == "postgresql":
            session.execute(text("ANALYZE sc_customers"))
    with _stage(seconds, "fit"):
        program_gap = _median_of_histogram(session.execute(text(_GAP_HISTOGRAM))) or rules.fallback_gap_days
        with_visits = session.execute(text("SELECT COUNT(*) FROM sc_customers")).scalar_one()
        cut = (
            _HASH_MODULUS
            if with_visits <= rules.model_sample_size
            else math.ceil(_HASH_MODULUS * rules.model_sample_size / with_visits)
        )
        sample = [tuple(row) for row in _execute(session, _MODEL_SAMPLE, {"as_of_day": as_of_day, "cut": cut})]
        model = fit_models(sample, min_customers=rules.model_min_customers)
    return Prepared(program_gap=float(program_gap), model=model, customers_with_visits=with_visits, seconds=seconds)


def score_params(*, source: Source, as_of_day: int, rules: ScoringRules, prepared: Prepared) -> dict:
    params = {
        **source.params,
        "as_of_day": as_of_day,
        "new_days": rules.new_days,
        "prior_gaps": float(rules.rhythm_prior_gaps),
        "program_gap": prepared.program_gap,
        "lapsing_threshold": float(rules.lapsing_threshold),
        "lapsed_threshold": float(rules.lapsed_threshold),
        "horizon": float(rules.return_horizon_days),
    }
    for prefix, name in (("bg", "bgnbd"), ("mbg", "mbgnbd")):
        for key, value in prepared.model.get(name, {}).items():
            params[f"{prefix}_{key}"] = value
    return params


def drop_temp_tables(session: Session) -> None:
    for table in ("sc_customers", "sc_visits"):
        session.execute(text(f"DROP TABLE IF EXISTS {table}"))


# --- a program's nightly scores --------------------------------------------------------------


def local_day(*, now: datetime, timezone: str) -> tuple[date, int]:
    """The program's local date at `now`, and its UTC offset in seconds then."""
    local = now.astimezone(ZoneInfo(timezone))
    offset = local.utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return local.date(), int(offset.total_seconds())


def write_program_scores(
    *, session: Session, program_id: int, timezone: str, now: datetime, rules: ScoringRules
) -> tuple[date, Prepared]:
    """Replace the program's scores for its local date at `now`; flushes, never commits."""
    as_of, offset = local_day(now=now, timezone=timezone)
    dialect = session.get_bind().dialect.name
    day = epoch_day(as_of)
    source = program_source(
        dialect=dialect, program_id=program_id, now=now, first_day=day - rules.window_days + 1, tz_offset=offset
    )
    prepared = prepare(session=session, source=source, as_of_day=day, rules=rules)
    params = score_params(source=source, as_of_day=day, rules=rules, prepared=prepared)
    columns = ", ".join(SCORE_COLUMNS)
    select = _scores_select(source, with_model="bgnbd" in prepared.model)
    with _stage(prepared.seconds, "write"):
        _execute(
            session,
            "DELETE FROM customer_scores WHERE program_id = :program_id AND as_of = :as_of",
            {"program_id": program_id, "as_of": as_of},
        )
        _execute(
            session,
            f"""
            INSERT INTO customer_scores (program_id, as_of, {columns})
            SELECT :program_id, :as_of, {columns} FROM ({select}) scored""",
            {**params, "as_of": as_of},
        )
        drop_temp_tables(session)
        if dialect == "postgresql":
            # A million fresh rows: without new statistics the planner takes tonight's slice for one
            # row and segment queries join it by nested loop.
            session.execute(text("ANALYZE customer_scores"))
    events.scores_written.send(session, program_id=program_id, as_of=as_of)
    return as_of, prepared


# --- offline: any (customer, date, amount) history -------------------------------------------


def _cents(amount) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def score_history(
    visits: Iterable[tuple[str, date, object]], *, as_of: date, rules: ScoringRules | None = None
) -> tuple[list[dict], Prepared]:
    """Score a history offline with the same SQL, in an in-memory SQLite; rows keyed by the input ids."""
    from app.db import make_engine

    rules = rules or ScoringRules()
    keys: dict[str, int] = {}
    rows = []
    for customer, day, amount in visits:
        if day > as_of:
            continue
        number = keys.setdefault(str(customer), len(keys) + 1)
        rows.append({"c": number, "d": epoch_day(day), "m": _cents(amount)})
    engine = make_engine("sqlite://")
    try:
        with Session(engine) as session, session.begin():
            session.execute(text("CREATE TABLE offline_visits (customer_id INTEGER, day INTEGER, cents BIGINT)"))
            if rows:
                session.execute(text("INSERT INTO offline_visits VALUES (:c, :d, :m)"), rows)
            today = epoch_day(as_of)
            prepared = prepare(session=session, source=OFFLINE_SOURCE, as_of_day=today, rules=rules)
            params = score_params(source=OFFLINE_SOURCE, as_of_day=today, rules=rules, prepared=prepared)
            select = _scores_select(OFFLINE_SOURCE, with_model="bgnbd" in prepared.model)
            scored = [dict(row._mapping) for row in _execute(session, select + " ORDER BY customer_id", params)]
    finally:
        engine.dispose()
    names = {number: key for key, number in keys.items()}
    for row in scored:
        row["customer_id"] = names[row["customer_id"]]
    return scored, prepared
