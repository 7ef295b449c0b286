"""Nightly scoring and segment previews at scale, on PostgreSQL.

Creates a throwaway database, migrates it, seeds the demo program, and loads with COPY one
million customers (with cards and SMS consents for some) and twenty million visits over two
years: each customer has a rhythm of their own (every few days to every two months) and a
last visit anywhere from today to two years ago (half of them recently, by their rhythm); the
visits before it go back as far as their count and rhythm take them. Then it times the nightly scoring of the
whole program (the service's own function, in one transaction, BG/NBD fit included) and a few
segment previews (count and sample), and prints the figures.

    .venv/bin/python bench/scoring.py [--server postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--customers 1000000] [--visits 20000000] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HISTORY_DAYS = 730
CHUNK = 100_000  # customers per COPY round


def log(message: str) -> None:  # progress on stderr; the figures go to stdout
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def create_database(server: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"pointcard_bench_scoring_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def _copy(cursor, statement: str, frame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, sep="\t", header=False, index=False, na_rep="\\N")
    with cursor.copy(statement) as copy:
        copy.write(buffer.getvalue())


def visit_counts(rng, customers: int, visits: int):
    """Visits per customer: 5% never came, the rest skewed (many few, some very many), summing to `visits`."""
    import numpy as np

    counts = 1 + rng.negative_binomial(1, 1 / 20, size=customers).astype(np.int64)
    counts[rng.random(customers) < 0.05] = 0
    counts = np.floor(counts * visits / counts.sum()).astype(np.int64)
    short = visits - counts.sum()
    np.add.at(counts, rng.choice(np.flatnonzero(counts), size=short), 1)  # exact total
    return counts


def generate(
    database_url: str,
    *,
    customers: int,
    visits: int,
    program_id: int,
    tiers: list[int],
    now: datetime,
    seed: int = 20260101,
) -> None:
    import numpy as np
    import pandas as pd
    import psycopg

    rng = np.random.default_rng(seed)
    counts = visit_counts(rng, customers, visits)
    now_s = int(now.timestamp())
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.execute("DROP INDEX IF EXISTS ix_purchases_customer_created")
        next_id = 1
        loaded = 0
        for start in range(0, customers, CHUNK):
            n = min(CHUNK, customers - start)
            ids = np.arange(next_id, next_id + n)
            k = counts[start : start + n]
            gap = rng.choice([2, 4, 7, 7, 14, 30, 60], size=n).astype(float)  # each customer's rhythm, days
            recency = np.where(rng.random(n) < 0.5, rng.exponential(gap), rng.uniform(0, HISTORY_DAYS, n))
            owner = np.repeat(np.arange(n), k)
            steps = rng.exponential(gap[owner]) * 86400
            # Lay each customer's visits backwards from their last one: `back` is the time before it.
            before = np.concatenate(([0.0], np.cumsum(steps)))
            back = before[:-1] - np.repeat(before[np.cumsum(k) - k], k)
            at = (now_s - recency[owner] * 86400 - back).astype(np.int64)
            first = pd.Series(at).groupby(owner).min().reindex(range(n)).to_numpy()
            enrolled = np.where(np.isnan(first), now_s - rng.uniform(0, HISTORY_DAYS, n) * 86400, first - 3600)
            points = rng.integers(0, 3000, n)
            customer_frame = pd.DataFrame(
                {
                    "id": ids,
                    "program_id": program_id,
                    "first_name": "Bench",
                    "last_name": ids.astype(str),
                    "referral_code": [f"B{i:011d}" for i in ids],
                    "points_balance": points,
                    "tier_id": np.select([points >= 1500, points >= 500], [tiers[2], tiers[1]], tiers[0]),
                    "created_at": pd.to_datetime(enrolled.astype(np.int64), unit="s"),
                }
            )
            _copy(
                cursor,
                "COPY customers (id, program_id, first_name, last_name, referral_code, points_balance, "
                "tier_id, created_at) FROM STDIN",
                customer_frame,
            )
            _copy(
                cursor,
                "COPY cards (customer_id, member_number, barcode_token, access_token, status, created_at, "
                "updated_at) FROM STDIN",
                pd.DataFrame(
                    {
                        "customer_id": ids,
                        "member_number": [f"{i:010d}" for i in ids],
                        "barcode_token": [f"BENCH{i:011d}" for i in ids],
                        "access_token": [f"A{i:015d}" for i in ids],
                        "status": "active",
                        "created_at": customer_frame.created_at,
                        "updated_at": customer_frame.created_at,
                    }
                ),
            )
            consenting = ids[rng.random(n) < 0.4]
            _copy(
                cursor,
                "COPY consents (customer_id, channel, granted, source, disclosure, recorded_at) FROM STDIN",
                pd.DataFrame(
                    {
                        "customer_id": consenting,
                        "channel": "sms",
                        "granted": True,
                        "source": "bench",
                        "disclosure": "",
                        "recorded_at": pd.Timestamp(now.replace(tzinfo=None)),
                    }
                ),
            )
            _copy(
                cursor,
                "COPY purchases (customer_id, store_id, amount, currency, points_earned, refunded_amount, "
                "points_reversed, created_at) FROM STDIN",
                pd.DataFrame(
                    {
                        "customer_id": ids[owner],
                        "store_id": rng.integers(1, 4, len(owner)),
                        "amount": np.round(rng.uniform(2, 40, len(owner)), 2),
                        "currency": "USD",
                        "points_earned": 0,
                        "refunded_amount": 0,
                        "points_reversed": 0,
                        "created_at": pd.to_datetime(at, unit="s"),
                    }
                ),
            )
            next_id += n
            loaded += len(owner)
            log(f"  {next_id - 1:>9,} customers, {loaded:>11,} visits")
        cursor.execute(f"SELECT setval('customers_id_seq', {next_id})")
        log("indexing purchases (customer_id, created_at) and analysing")
        cursor.execute("CREATE INDEX ix_purchases_customer_created ON purchases (customer_id, created_at)")
        cursor.execute("ANALYZE")


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("POINTCARD_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--visits", type=int, default=20_000_000)
    parser.add_argument("--previews", type=int, default=3, help="runs of each preview (the median is reported)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s: %(message)s", datefmt="%H:%M:%S")

    from sqlalchemy import select, text

    from app.campaigns import service
    from app.campaigns.config import CampaignSettings
    from app.campaigns.models import ScoringRun
    from app.db import Database
    from app.db_cli import upgrade
    from app.demo.seed import seed_demo
    from app.loyalty.models import Program, Tier

    url = create_database(args.server)
    log(f"database {url.rsplit('/', 1)[1]}")
    database = Database(url)
    figures: dict = {"customers": args.customers, "visits": args.visits}
    try:
        upgrade(url)
        with database.transaction() as session:
            seed_demo(session=session, password_cost=15)
            program = session.scalar(select(Program))
            tiers = [t.id for t in session.scalars(select(Tier).order_by(Tier.threshold))]
            figures["postgresql"] = session.execute(text("SHOW server_version")).scalar()
            figures["work_mem"] = session.execute(text("SHOW work_mem")).scalar()
            figures["shared_buffers"] = session.execute(text("SHOW shared_buffers")).scalar()
        now = datetime.now(UTC).replace(microsecond=0)
        log(f"loading {args.customers:,} customers and {args.visits:,} visits with COPY")
        seconds, _ = timed(
            lambda: generate(
                url, customers=args.customers, visits=args.visits, program_id=program.id, tiers=tiers, now=now
            )
        )
        figures["load_seconds"] = round(seconds, 1)

        def score(settings: CampaignSettings):  # the job's own function, in one transaction
            with database.transaction() as session:
                return service.score_program(
                    session=session, program=session.get(Program, program.id), now=now, settings=settings
                )

        figures["scoring_seconds"] = {}
        # The first night, then the same night again (which also replaces the first run's rows).
        for label in ("first run", "run again"):
            log(f"nightly scoring, {label}")
            seconds, _ = timed(lambda: score(CampaignSettings()))
            figures["scoring_seconds"][label] = round(seconds, 1)
            log(f"  {seconds:.1f} s")
        with database.transaction() as session:
            run = session.scalar(select(ScoringRun))
            figures["scored"] = {
                "customers": run.customers,
                "counts": run.counts,
                "program_gap_days": run.program_gap_days,
                "model": run.model,
            }

        previews = {
            "status = lapsing": {"field": "status", "op": "eq", "value": "lapsing"},
            "lapsing and SMS consent": {
                "all": [
                    {"field": "status", "op": "eq", "value": "lapsing"},
                    {"field": "consent", "channel": "sms", "op": "eq", "value": True},
                ]
            },
            "Gold or Silver, 30+ days away, p_alive > 0.5": {
                "all": [
                    {"field": "tier", "op": "in", "value": ["Gold", "Silver"]},
                    {"field": "days_since_visit", "op": "gt", "value": 30},
                    {"field": "p_alive", "op": "gt", "value": 0.5},
                ]
            },
            "3+ purchases in the last 90 days (live)": {"field": "visits", "op": "gte", "value": 3, "within_days": 90},
        }
        figures["previews"] = {}
        for name, rules in previews.items():
            runs = []
            for _ in range(args.previews):
                with database.transaction() as session:
                    seconds, preview = timed(
                        lambda rules=rules, session=session: service.preview(
                            session=session, program=session.get(Program, program.id), rules=rules, now=now
                        )
                    )
                runs.append(seconds)
            figures["previews"][name] = {"median_seconds": round(statistics.median(runs), 3), "count": preview["count"]}
            log(f"  preview {name!r}: {preview['count']:,} customers in {statistics.median(runs):.3f} s")
    finally:
        database.dispose()
        if not args.keep:
            drop_database(args.server, url)
    print(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
