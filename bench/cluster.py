"""The multi-node run: a push campaign through a whole deployment that loses nodes on the way.

    .venv/bin/python bench/cluster.py [--recipients 20000] [--webs 2] [--schedulers 2] [--workers 3]
                                      [--concurrency 8] [--no-kills] [--pg URL] [--json]

On a throwaway PostgreSQL database (created, migrated, dropped), with tests/cluster.py (the
same code as tests/core/test_cluster.py):

1. seeds the demo program and `--recipients` customers, each with a push opt-in and a browser
   subscription at a local Web Push service that verifies VAPID and decrypts every payload;
2. starts the web nodes (gunicorn, one worker x 4 threads each), the schedulers (the first
   leads, the others wait on the advisory lock) and the outbox workers, as separate processes
   with production settings;
3. a marketer logs in on web node 1 and schedules a push campaign to everyone, now;
4. SIGKILLs the active scheduler (found through pg_locks) once a quarter of the audience is
   targeted, and worker 1 once 40 % is sent (`--no-kills`: neither);
5. waits until every target is queued and every outbox row settled, reads the results
   through the last web node, and prints messages/s, the timings and the exactly-once counts.

Exit status: 0, 2 when a count is wrong (a duplicate, a missing message, a job run twice).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.db import Database  # noqa: E402
from app.db_cli import upgrade  # noqa: E402
from tests.cluster import Cluster, as_json, quiet_push_log, run_campaign, seed_audience, vapid_key  # noqa: E402
from tests.fakes.push import FakePushService  # noqa: E402


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--webs", type=int, default=2)
    parser.add_argument("--schedulers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-kills", action="store_true")
    parser.add_argument(
        "--pg",
        default=os.environ.get("POINTCARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--json", action="store_true", help="the figures as JSON on stdout")
    args = parser.parse_args()
    if args.schedulers < 2 and not args.no_kills:
        parser.error("killing the active scheduler needs a standby: --schedulers 2 or more, or --no-kills")
    if args.workers < 2 and not args.no_kills:
        parser.error("killing a worker needs another: --workers 2 or more, or --no-kills")

    quiet_push_log()
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    name = f"pointcard_bench_cluster_{uuid.uuid4().hex[:8]}"
    url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = None
    private_pem, public_key = vapid_key()
    push = FakePushService(vapid_public_key=public_key).start()
    try:
        upgrade(url)
        database = Database(url)
        with tempfile.TemporaryDirectory(prefix="pointcard-cluster-") as workdir:
            log(f"seeding {args.recipients} customers with push subscriptions ...")
            passwords, subscriptions = seed_audience(database, push, args.recipients)
            cluster = Cluster(
                url,
                Path(workdir),
                push,
                private_pem,
                webs=args.webs,
                schedulers=args.schedulers,
                workers=args.workers,
                concurrency=args.concurrency,
            )
            try:
                log(f"starting {args.webs} web, {args.schedulers} scheduler and {args.workers} worker processes ...")
                cluster.start()
                report = run_campaign(
                    cluster, database, passwords=passwords, subscriptions=subscriptions, no_kills=args.no_kills
                )
            finally:
                cluster.stop()
    finally:
        push.stop()
        if database is not None:
            database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    log(report.summary())
    t = report.timings
    rows = [
        ("recipients", f"{report.recipients:,}"),
        ("nodes", f"{args.webs} web, {args.schedulers} schedulers, {args.workers} workers x {args.concurrency}"),
        ("schedule -> last push", f"{t['drain']:.1f} s"),
        ("messages/s (end to end)", f"{report.recipients / t['drain']:.0f}"),
        ("audience targeted after", f"{t['targeted']:.1f} s"),
    ]
    if not args.no_kills:
        rows += [
            ("active scheduler killed at", f"{t['scheduler_killed']:.1f} s ({report.killed_scheduler})"),
            ("standby leading after", f"{t['takeover']:.2f} s ({report.standby})"),
            (
                "worker killed at",
                f"{t['worker_killed']:.1f} s ({report.killed_worker}, "
                f"{report.in_flight_at_kill}+ pushes unanswered, "
                f"{report.re_leased} rows re-leased)",
            ),
        ]
    rows += [
        ("outbox rows", ", ".join(f"{state} {count:,}" for state, count in sorted(report.messages.items()))),
        ("pushes accepted", f"{report.pushes:,} ({report.resent} resent under the same Topic)"),
        ("shown once / duplicates / missing", f"{report.shown:,} / {report.duplicates} / {report.missing}"),
        (
            "job runs / repeated",
            f"{sum(report.job_runs.values())} / {report.job_repeats} ({len(report.cut_off)} cut off by the kill)",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    table = "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
    print(as_json(report) if args.json else table)
    if args.json:
        log(table)
    wrong = (
        report.duplicates
        or report.missing
        or report.job_repeats
        or report.targets != report.recipients
        or report.messages != {"sent": report.recipients}
    )
    return 2 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
