"""Benchmark the outbox: messages per second from enqueue to a local zero-latency provider.

    .venv/bin/python bench/outbox.py [--messages N] [--workers 1,2,4] [--concurrency C]
                                     [--transactional] [--pg URL] [--json]

For each worker count, on a throwaway PostgreSQL database (created, migrated, dropped):

1. seeds the demo program and one customer per message, each with an SMS opt-in on record
   (with --transactional: no customers, and no consent, quiet-hour or cap checks);
2. starts W outbox worker processes: the real worker loop (`app.messaging.worker`) with the
   loopback channel registered, sending to a local HTTP provider that answers at once and
   takes each message id once (idempotency key);
3. end to end: with the workers idle, enqueues N messages through `enqueue()` (rendered with
   the customer's fields, 500 per transaction, as a campaign job would) and times from the
   first enqueue to the provider having every message;
4. drain: enqueues N more not yet due, makes them all due in one statement, and times until
   the provider has them: what the workers alone sustain;
5. checks every message reached the provider exactly once, then stops the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select, text, update  # noqa: E402

from app import wiring  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import Database, utcnow  # noqa: E402
from app.db_cli import upgrade  # noqa: E402
from app.demo.seed import seed_demo  # noqa: E402
from app.loyalty.models import Channel, Consent, Customer, Program  # noqa: E402
from app.messaging.models import Message, MessageState  # noqa: E402
from app.messaging.outbox import enqueue  # noqa: E402
from tests.fakes.loopback import LoopbackProvider  # noqa: E402
from tests.fakes.worker import CHANNEL, loopback_channel  # noqa: E402

DISCLOSURE = "Yes, text me Pointcard offers. Reply STOP to opt out."
ALL_DAY = '{"start": "00:00", "end": "23:59:59.999999"}'


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server = args.pg.rsplit("/", 1)[0]
        self.admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        self.name = f"pointcard_bench_outbox_{uuid.uuid4().hex[:8]}"
        self.url = f"{self.server}/{self.name}"

    def run(self) -> list[dict]:
        results = []
        for workers in self.args.workers:
            self._sql(f'CREATE DATABASE "{self.name}"')
            try:
                results.append(self._one(workers))
            finally:
                self._sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        return results

    def _sql(self, statement: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(statement))

    def _one(self, workers: int) -> dict:
        upgrade(self.url)
        database = Database(self.url)
        # The loopback channel with the policy the workers apply, so enqueue renders and checks alike.
        channel = loopback_channel(marketing_messages=not self.args.transactional)
        wiring.build(Settings(database_url=self.url), database, channels=(*wiring.CHANNELS, channel))
        n = self.args.messages
        customers = [] if self.args.transactional else self._customers(database, 2 * n)
        provider = LoopbackProvider().start()
        processes = [self._worker(provider.url) for _ in range(workers)]
        try:
            e2e, enqueue_seconds = self._end_to_end(database, provider, customers[:n], n)
            drain = self._drain(database, provider, customers[n:], n)
            self._check(database, provider, 2 * n)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
            provider.stop()
            database.dispose()
        result = {
            "workers": workers,
            "concurrency": self.args.concurrency,
            "messages": n,
            "marketing": not self.args.transactional,
            "end_to_end_per_s": round(n / e2e),
            "enqueue_per_s": round(n / enqueue_seconds),
            "drain_per_s": round(n / drain),
        }
        log(
            f"{workers} worker(s): end to end {result['end_to_end_per_s']}/s "
            f"(enqueue alone {result['enqueue_per_s']}/s), drain {result['drain_per_s']}/s"
        )
        return result

    def _customers(self, database: Database, count: int) -> list[int]:
        with database.transaction() as session:
            seed_demo(session=session, password_cost=15)
            program_id = session.scalar(select(Program.id))
            now = utcnow()
            session.execute(
                insert(Customer),
                [
                    {
                        "program_id": program_id,
                        "first_name": f"Guest{i}",
                        "last_name": "",
                        "timezone": "Europe/Paris",
                        "referral_code": f"B{i:09d}",
                        "points_balance": 0,
                        "created_at": now,
                    }
                    for i in range(count)
                ],
            )
            ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
            session.execute(
                insert(Consent),
                [
                    {
                        "customer_id": c,
                        "channel": Channel.sms,
                        "granted": True,
                        "source": "bench",
                        "disclosure": DISCLOSURE,
                        "recorded_at": now,
                    }
                    for c in ids
                ],
            )
        return ids

    def _worker(self, url: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "PYTHONPATH": str(ROOT),
            "POINTCARD_ENV": "test",
            "POINTCARD_SECRET_KEY": "bench-secret-" + uuid.uuid4().hex * 2,
            "POINTCARD_MESSAGING__CONCURRENCY": str(self.args.concurrency),
            "POINTCARD_MESSAGING__BATCH_SIZE": str(self.args.batch_size),
            "POINTCARD_MESSAGING__IDLE_SECONDS": "0.05",
            "POINTCARD_MESSAGING__QUIET_HOURS": ALL_DAY,
        }
        argv = [sys.executable, "-m", "tests.fakes.worker", url] + ([] if self.args.transactional else ["--marketing"])
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker did not start")
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep its pipe drained
        return process

    def _enqueue(self, database: Database, customers: list[int], count: int, tag: str, not_before=None) -> None:
        for start in range(0, count, 500):
            with database.transaction() as session:
                for i in range(start, min(start + 500, count)):
                    enqueue(
                        session=session,
                        customer_id=customers[i] if customers else None,
                        channel=CHANNEL,
                        content={"body": "Hi {{ first_name }}, double points today!"},
                        template="bench",
                        dedupe_key=f"{tag}-{i}",
                        not_before=not_before,
                    )

    def _wait_for(self, provider: LoopbackProvider, total: int, deadline: float = 600) -> None:
        tick, limit = threading.Event(), time.monotonic() + deadline
        while len(provider.deliveries) < total:
            if time.monotonic() > limit:
                raise RuntimeError(f"the provider has {len(provider.deliveries)} of {total} after {deadline} s")
            tick.wait(0.01)

    def _end_to_end(
        self, database: Database, provider: LoopbackProvider, customers: list[int], n: int
    ) -> tuple[float, float]:
        started = time.perf_counter()
        self._enqueue(database, customers, n, "e2e")
        enqueued = time.perf_counter()
        self._wait_for(provider, n)
        return time.perf_counter() - started, enqueued - started

    def _drain(self, database: Database, provider: LoopbackProvider, customers: list[int], n: int) -> float:
        self._enqueue(database, customers, n, "drain", not_before=utcnow() + timedelta(days=1))
        started = time.perf_counter()
        with database.transaction() as session:
            session.execute(update(Message).where(Message.state == MessageState.queued).values(not_before=utcnow()))
        self._wait_for(provider, 2 * n)
        return time.perf_counter() - started

    def _check(self, database: Database, provider: LoopbackProvider, total: int) -> None:
        if set(provider.deliveries.values()) != {1} or len(provider.deliveries) != total:
            raise RuntimeError("a message reached the provider twice or never")
        tick, limit = threading.Event(), time.monotonic() + 60
        while self._sent(database) != total:  # the last outcomes may still be on their way in
            if time.monotonic() > limit:
                raise RuntimeError("the outbox does not record every message as sent")
            tick.wait(0.05)

    def _sent(self, database: Database) -> int:
        with database.transaction() as session:
            return session.scalar(select(func.count()).select_from(Message).where(Message.state == MessageState.sent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")], default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=8, help="sends in flight per worker")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--transactional", action="store_true", help="no consent/quiet-hour/cap checks")
    parser.add_argument(
        "--pg", default=os.environ.get("POINTCARD_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = Bench(args).run()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"outbox on PostgreSQL, {args.messages} messages, {args.concurrency} sends in flight per worker, "
        f"{'transactional' if args.transactional else 'marketing (consent, quiet hours, caps checked)'}; "
        f"{os.cpu_count()} CPUs"
    )
    print("workers  end-to-end msg/s  (enqueue alone)  drain msg/s")
    for r in results:
        print(f"{r['workers']:>7}  {r['end_to_end_per_s']:>16}  {r['enqueue_per_s']:>15}  {r['drain_per_s']:>11}")


if __name__ == "__main__":
    main()
