"""Nightly scoring on generated histories with known answers, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import csv
import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.campaigns import service
from app.campaigns.config import CampaignSettings
from app.campaigns.jobs import score_customers
from app.campaigns.models import CustomerScore, ScoringRun
from app.campaigns.scoring import SCORE_COLUMNS, ScoringRules, score_history
from app.campaigns.simulate import History, add_histories, every, random_history
from app.db import Database
from app.db_cli import upgrade
from app.demo.seed import seed_demo
from app.loyalty.models import Program

# 12:00 in Los Angeles (the demo program's zone): every visit below is at 11:00 local time.
NOW = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)
TODAY = date(2026, 6, 15)
NO_MODEL = CampaignSettings(model_min_customers=10_000)


def day(offset: int) -> datetime:
    """11:00 in Los Angeles, `offset` days from today."""
    return datetime(2026, 6, 15, 18, 0, tzinfo=UTC) + timedelta(days=offset)


def known_histories() -> dict[str, History]:
    weekly = lambda last: every(7, first=day(-200), last=day(last))  # noqa: E731
    return {
        "weekly stopped": History("Wes", day(-200), weekly(-28)),
        "weekly regular": History("Reg", day(-200), weekly(-3)),
        "weekly gone": History("Gon", day(-200), weekly(-50)),
        "monthly fine": History("Mon", day(-300), every(30, first=day(-291), last=day(-21), amount="60.00")),
        "won back": History("Bac", day(-200), [*every(7, first=day(-200), last=day(-37)), (day(-2), 9)]),
        "one-time old": History("Old", day(-60), [(day(-60), 12)]),
        "one-time recent": History("New", day(-10), [(day(-10), 12)]),
        "never came": History("Nev", day(-100)),
        "just enrolled": History("Jus", day(-5)),
    }


def seed_program(database: Database) -> Program:
    with database.transaction() as session:
        seed_demo(session=session, password_cost=10)
        program = session.scalar(select(Program))
        session.expunge(program)
        return program


def add(database: Database, program: Program, histories) -> list[int]:
    with database.transaction() as session:
        return add_histories(session, program_id=program.id, currency=program.currency, histories=histories)


def score(database: Database, program: Program, settings: CampaignSettings = NO_MODEL, now: datetime = NOW):
    with database.transaction() as session:
        service.score_program(session=session, program=session.get(Program, program.id), now=now, settings=settings)
    with database.transaction() as session:
        return {
            row.customer_id: row
            for row in session.scalars(select(CustomerScore).where(CustomerScore.as_of == now.date()))
        }


@pytest.fixture
def history(db):
    program = seed_program(db.database)
    histories = known_histories()
    ids = dict(zip(histories, add(db.database, program, histories.values()), strict=True))
    return program, ids


def test_statuses_follow_each_customers_own_rhythm(db, history):
    program, ids = history
    scores = score(db.database, program)
    status = {name: scores[ids[name]].status for name in ids}
    assert status == {
        "weekly stopped": "lapsing",  # 28 days against a 7-day rhythm: 4x overdue
        "weekly regular": "active",
        "weekly gone": "lapsed",  # 50 days: over 5x
        "monthly fine": "active",  # 21 days is nothing for a monthly customer
        "won back": "won_back",  # came back after 35 days away
        "one-time old": "lapsed",  # 60 days against the program's 7-day rhythm
        "one-time recent": "new",
        "never came": "lapsed",
        "just enrolled": "new",
    }
    stopped, monthly = scores[ids["weekly stopped"]], scores[ids["monthly fine"]]
    assert (stopped.recency_days, stopped.median_gap_days, stopped.rhythm_days) == (28, 7.0, 7.0)
    assert stopped.overdue_factor == pytest.approx(4.0)
    assert (monthly.visits, monthly.median_gap_days, monthly.recency_days) == (10, 30.0, 21)
    # The own median (30, nine gaps) blended with the program's 7 days as three gaps.
    assert monthly.rhythm_days == pytest.approx((9 * 30 + 3 * 7) / 12)
    assert monthly.overdue_factor == pytest.approx(21 / monthly.rhythm_days)
    assert scores[ids["one-time old"]].rhythm_days == 7.0 and scores[ids["one-time old"]].median_gap_days is None
    assert scores[ids["won back"]].last_gap_days == 35
    assert scores[ids["never came"]].recency_days is None and scores[ids["never came"]].visits == 0
    assert scores[ids["monthly fine"]].spend_cents == 60000
    with db.database.transaction() as session:
        run = session.scalar(select(ScoringRun))
        assert run.as_of == TODAY and run.program_gap_days == 7.0 and run.customers == 9
        assert run.counts == {"lapsing": 1, "active": 2, "lapsed": 3, "won_back": 1, "new": 2}
        assert run.model == {"skipped": "7 customers in the sample; the fit needs 10000"}


def test_rfm_scores_are_quintiles_where_ties_share_a_score(db, history):
    program, ids = history
    scores = score(db.database, program)
    visited = [row for row in scores.values() if row.visits]
    n = len(visited)

    def quintile(value, values):
        rank = 1 + sum(1 for other in values if other < value)  # RANK(): ties share the lowest rank
        return 1 + 5 * (rank - 1) // n

    for row in visited:
        assert row.r_score == quintile(-row.recency_days, [-r.recency_days for r in visited])
        assert row.f_score == quintile(row.visits, [r.visits for r in visited])
        assert row.m_score == quintile(row.spend_cents, [r.spend_cents for r in visited])
    assert scores[ids["one-time old"]].f_score == scores[ids["one-time recent"]].f_score == 1
    assert scores[ids["weekly regular"]].f_score == 5 and scores[ids["won back"]].r_score == 5
    assert scores[ids["never came"]].r_score is None


def test_the_night_is_the_programs_and_scores_are_kept_per_day(db, history):
    program, ids = history
    settings = NO_MODEL.model_copy(update={"score_hour": 3})
    two_am_local = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
    assert score_customers(database=db.database, now=two_am_local, settings=settings) == 0
    assert score_customers(database=db.database, now=two_am_local + timedelta(hours=2), settings=settings) == 1
    assert score_customers(database=db.database, now=two_am_local + timedelta(hours=3), settings=settings) == 0
    score(db.database, program, now=NOW + timedelta(days=1))
    with db.database.transaction() as session:
        days = session.scalars(
            select(CustomerScore.as_of)
            .where(CustomerScore.customer_id == ids["weekly stopped"])
            .order_by(CustomerScore.as_of)
        ).all()
        assert days == [TODAY, TODAY + timedelta(days=1)]
        assert session.scalars(select(ScoringRun.as_of).order_by(ScoringRun.as_of)).all() == days


def population(seed: int = 7, size: int = 260) -> list[History]:
    rng = random.Random(seed)
    return [random_history(rng, name=f"P{i}", start=day(-330), end=day(-1)) for i in range(size)]


def test_p_alive_is_bgnbd_and_mbgnbd_for_one_time_buyers(db):
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter

    program = seed_program(db.database)
    add(db.database, program, population())
    scores = score(db.database, program, settings=CampaignSettings(model_min_customers=100))
    with db.database.transaction() as session:
        model = session.scalar(select(ScoringRun)).model
    bg, mbg = BetaGeoFitter(), ModifiedBetaGeoFitter()
    bg.params_, mbg.params_ = (__import__("pandas").Series(model[name]) for name in ("bgnbd", "mbgnbd"))
    repeaters = [row for row in scores.values() if row.visits > 1]
    one_timers = [row for row in scores.values() if row.visits == 1]
    assert len(repeaters) > 100 and len(one_timers) > 10 and model["customers"] == len(scores)
    for rows, fitter in ((repeaters, bg), (one_timers, mbg)):
        import numpy as np

        x = np.array([row.visits - 1 for row in rows])
        t = np.array([row.tenure_days for row in rows], dtype=float)
        expected = fitter.conditional_probability_alive(x, t - np.array([row.recency_days for row in rows]), t)
        assert [row.p_alive for row in rows] == pytest.approx(list(expected), rel=1e-9, abs=1e-12)
    assert all(0 <= row.p_return <= row.p_alive <= 1 for row in scores.values())


def _rows(database: Database) -> list[tuple]:
    with database.transaction() as session:
        return [
            tuple(getattr(row, column) for column in SCORE_COLUMNS)
            for row in session.scalars(select(CustomerScore).order_by(CustomerScore.customer_id))
        ]


def _same(left: list[tuple], right: list[tuple]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        for column, x, y in zip(SCORE_COLUMNS, a, b, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                assert x == pytest.approx(y, rel=1e-12, abs=1e-15), (a[0], column)
            else:
                assert x == y, (a[0], column)


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_the_same_scores(pg_db, tmp_path):
    sqlite_url = f"sqlite:///{tmp_path / 'scores.db'}"
    upgrade(sqlite_url)
    sqlite = Database(sqlite_url)
    settings = CampaignSettings(model_min_customers=100)
    results = []
    try:
        for database in (sqlite, pg_db.database):
            program = seed_program(database)
            add(database, program, list(known_histories().values()) + population(seed=11))
            score(database, program, settings=settings)
            results.append(_rows(database))
    finally:
        sqlite.dispose()
    _same(*results)
    assert {row[SCORE_COLUMNS.index("status")] for row in results[0]} == {
        "new",
        "active",
        "lapsing",
        "lapsed",
        "won_back",
    }
    assert sum(row[SCORE_COLUMNS.index("p_alive")] is not None for row in results[0]) > 200


def test_the_cli_scores_a_csv_history_with_the_same_code(app, db, history, tmp_path):
    program, ids = history
    scores = score(db.database, program)
    source, out = tmp_path / "history.csv", tmp_path / "scores.csv"
    names = {customer_id: name for name, customer_id in ids.items()}
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["customer_id", "date", "amount"])
        for name, item in known_histories().items():
            for at, amount in item.visits:
                writer.writerow([name, (at - timedelta(hours=7)).date().isoformat(), amount])
    result = app.test_cli_runner().invoke(
        args=["campaigns", "score", "--transactions", str(source), "--as-of", TODAY.isoformat(), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "7 customers scored as of 2026-06-15" in result.output
    with out.open() as f:
        offline = {row["customer_id"]: row for row in csv.DictReader(f)}
    for customer_id, row in scores.items():
        if not row.visits:
            continue
        line = offline[names[customer_id]]
        assert line["status"] == row.status
        assert int(line["r_score"]) == row.r_score and int(line["visits"]) == row.visits
        assert float(line["overdue_factor"]) == pytest.approx(row.overdue_factor)


def test_the_offline_scorer_takes_a_history_without_a_database():
    visits = [("a", date(2026, 1, 1) + timedelta(days=7 * i), "5") for i in range(10)] + [("b", date(2026, 3, 1), "9")]
    rows, prepared = score_history(visits, as_of=date(2026, 3, 20), rules=ScoringRules(new_days=0))
    by_id = {row["customer_id"]: row for row in rows}
    assert prepared.program_gap == 7.0 and prepared.model["skipped"].startswith("2 customers")
    assert by_id["a"]["status"] == "lapsing" and by_id["a"]["recency_days"] == 15  # 15 / 7 = 2.1
    assert by_id["b"]["status"] == "lapsing" and math.isclose(by_id["b"]["overdue_factor"], 19 / 7)


def test_demo_history_fills_the_dashboard_of_a_fresh_install(app, db):
    runner = app.test_cli_runner()
    assert "no program yet" in runner.invoke(args=["campaigns", "demo-history", "--customers", "5"]).output
    seed_program(db.database)
    result = runner.invoke(args=["campaigns", "demo-history", "--customers", "40"])
    assert result.exit_code == 0 and "40 customers with" in result.output
    with db.database.transaction() as session:
        assert session.scalar(select(ScoringRun)).customers == 40
