"""Benchmark the till's earn path (POST /api/v1/pos/purchases) against pgbench on the same server.

    .venv/bin/python bench/pos.py [--clients N] [--seconds S] [--workers W] [--threads T] [--json]

What it does, end to end, and undoes afterwards:

1. creates a throwaway database on the PostgreSQL server (--pg), migrates it, seeds the demo
   program and enrolls --customers customers (so per-card velocity limits are not what is measured);
2. serves the app under gunicorn (gthread) in production mode, logs in as the demo cashier;
3. warms up, then runs --clients concurrent keep-alive HTTP clients for --seconds, each posting
   purchases for random cards with a fresh Idempotency-Key; measures earn tps and latency;
4. checks through SQL that every 201 made exactly one purchase and every cached balance equals
   the sum of its ledger;
5. runs pgbench's built-in simple-update (-c clients -j 2 -T seconds) on a second throwaway
   database of the same server, as a yardstick for what the server itself can commit;
6. prints both, and their ratio; stops gunicorn and drops both databases whatever happens.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing as mp
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CASHIER = "cashier@example.com"
PURCHASE_PATH = "/api/v1/pos/purchases"


# --- the load generator (runs in child processes: keep it lean, no app imports) ----------------


def _client_process(
    port: int,
    token: str,
    barcodes: list[str],
    n_threads: int,
    start_at: float,
    measure_from: float,
    stop_at: float,
    seed: int,
    results,
) -> None:
    """n_threads keep-alive clients; reports (latencies of measured 201s, counts) through `results`."""
    import random
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends us
    latencies: list[float] = []
    counts = {"ok": 0, "ok_total": 0, "errors": 0, "errors_total": 0, "statuses": {}, "exceptions": {}}
    lock = threading.Lock()
    clock = time.monotonic

    def run(thread_seed: int) -> None:
        rng = random.Random(thread_seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        base_headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Connection": "keep-alive",
        }
        mine: list[float] = []
        ok = ok_total = errors = errors_total = 0
        statuses: dict[int, int] = {}
        exceptions: dict[str, int] = {}
        prefix = uuid.uuid4().hex
        n = 0
        while clock() < start_at:
            time.sleep(0.001)
        while True:
            began = clock()
            if began >= stop_at:
                break
            n += 1
            body = f'{{"barcode":"{rng.choice(barcodes)}","amount":"12.34","currency":"USD"}}'
            headers = dict(base_headers)
            headers["Idempotency-Key"] = f"{prefix}-{n}"
            t0 = time.perf_counter()
            status = None
            try:
                conn.request("POST", PURCHASE_PATH, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                name = type(exc).__name__
                exceptions[name] = exceptions.get(name, 0) + 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            elapsed = time.perf_counter() - t0
            ended = clock()
            measured = measure_from <= ended <= stop_at
            if status == 201:
                ok_total += 1
                if measured:
                    ok += 1
                    mine.append(elapsed)
            else:
                errors_total += 1
                if measured:
                    errors += 1
                if status is not None:
                    statuses[status] = statuses.get(status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["ok_total"] += ok_total
            counts["errors"] += errors
            counts["errors_total"] += errors_total
            for k, v in statuses.items():
                counts["statuses"][k] = counts["statuses"].get(k, 0) + v
            for k, v in exceptions.items():
                counts["exceptions"][k] = counts["exceptions"].get(k, 0) + v

    threads = [threading.Thread(target=run, args=(seed * 1000 + i,), daemon=True) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((latencies, counts))


def run_load(
    *,
    port: int,
    token: str,
    barcodes: list[str],
    clients: int,
    procs: int,
    warmup: float,
    seconds: float,
    cpu_groups=None,
) -> dict:
    """Run the clients; `cpu_groups()` -> {name: [pids]} is sampled over the measured window."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = max(1, min(procs, clients))
    share = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    start_at = time.monotonic() + 1.5  # let the spawned interpreters come up first
    measure_from = start_at + warmup
    stop_at = measure_from + seconds
    children = [
        ctx.Process(
            target=_client_process,
            daemon=True,
            args=(port, token, barcodes, n, start_at, measure_from, stop_at, i + 1, results),
        )
        for i, n in enumerate(share)
    ]
    try:
        for child in children:
            child.start()
        cpu = None
        if cpu_groups is not None:
            _sleep_until(measure_from)
            before = cpu_snapshot({**cpu_groups(), "clients": [c.pid for c in children]})
            _sleep_until(stop_at)
            cpu = cpu_delta(before, cpu_snapshot({**cpu_groups(), "clients": [c.pid for c in children]}), seconds)
        latencies: list[float] = []
        total = {"ok": 0, "ok_total": 0, "errors": 0, "errors_total": 0, "statuses": {}, "exceptions": {}}
        for _ in children:
            lat, counts = results.get(timeout=stop_at - time.monotonic() + 120)
            latencies.extend(lat)
            for key in ("ok", "ok_total", "errors", "errors_total"):
                total[key] += counts[key]
            for key in ("statuses", "exceptions"):
                for k, v in counts[key].items():
                    total[key][k] = total[key].get(k, 0) + v
        for child in children:
            child.join(timeout=10)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join(timeout=5)
    latencies.sort()
    total["latencies"] = latencies
    total["tps"] = total["ok"] / seconds
    total["cpu"] = cpu
    return total


def _sleep_until(moment: float) -> None:
    while (left := moment - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))


# --- CPU accounting from /proc (Linux): what the app, PostgreSQL and the clients each burn ------
# The figures that survive a busy machine are CPU milliseconds per purchase, not tps; the
# "others" line says how much of the machine something outside the benchmark was using.

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (this process, all its threads)
    except (OSError, IndexError, ValueError):
        return 0


def _machine_ticks() -> tuple[int, int]:
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


def cpu_snapshot(groups: dict[str, list[int]]) -> dict:
    return {
        "groups": {name: {pid: _proc_ticks(pid) for pid in pids} for name, pids in groups.items()},
        "machine": _machine_ticks(),
    }


def cpu_delta(before: dict, after: dict, seconds: float) -> dict | None:
    if not after["machine"][1]:
        return None
    used: dict[str, float] = {}
    for name, pids in after["groups"].items():
        old = before["groups"].get(name, {})
        used[name] = sum(ticks - old.get(pid, 0) for pid, ticks in pids.items()) / _TICK  # CPU seconds
    busy = (after["machine"][0] - before["machine"][0]) / _TICK
    total = (after["machine"][1] - before["machine"][1]) / _TICK
    cores = total / seconds if seconds else 0
    used["others"] = max(0.0, busy - sum(used.values()))
    return {
        "cpu_seconds": {k: round(v, 2) for k, v in used.items()},
        "machine_busy_pct": round(100 * busy / total, 1) if total else None,
        "cores_seen": round(cores, 2),
        "seconds": seconds,
    }


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[index]


# --- the server side: databases, gunicorn, pgbench ---------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from sqlalchemy.engine import make_url

        self.args = args
        self.server = make_url(args.pg)
        tag = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.app_db = f"pointcard_bench_{tag}"
        self.pgbench_db = f"pointcard_pgbench_{tag}"
        self.created: list[str] = []
        self.gunicorn: subprocess.Popen | None = None
        self.tmp = tempfile.TemporaryDirectory(prefix="pointcard-bench-")
        self.gunicorn_log = Path(self.tmp.name) / "gunicorn.log"
        self._admin = None

    def log(self, message: str) -> None:
        if not self.args.quiet:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # databases

    def url(self, database: str) -> str:
        return self.server.set(database=database).render_as_string(hide_password=False)

    @property
    def admin(self):
        if self._admin is None:
            from sqlalchemy import create_engine, pool

            self._admin = create_engine(
                self.url(self.server.database or "postgres"), isolation_level="AUTOCOMMIT", poolclass=pool.NullPool
            )
        return self._admin

    def sql(self, statement: str, database: str | None = None):
        from sqlalchemy import create_engine, pool, text

        engine = (
            self.admin
            if database is None
            else create_engine(self.url(database), isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)
        )
        try:
            with engine.connect() as conn:
                result = conn.execute(text(statement))
                return result.all() if result.returns_rows else None
        finally:
            if database is not None:
                engine.dispose()

    def create_database(self, name: str) -> None:
        self.sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)

    def drop_databases(self) -> None:
        for name in reversed(self.created):
            try:
                self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                self.log(f"dropped database {name}")
            except Exception as exc:  # keep going: drop the others
                print(f"could not drop database {name}: {exc}", file=sys.stderr)
        self.created.clear()

    def checkpoint(self) -> None:
        with suppress(Exception):  # needs superuser or pg_checkpoint; only evens out the runs
            self.sql("CHECKPOINT")

    # the app's database

    def prepare_app_db(self) -> list[str]:
        from sqlalchemy import select

        from app.db import Database
        from app.db_cli import upgrade
        from app.demo.seed import seed_demo
        from app.loyalty.models import Card, Program
        from app.loyalty.service import enroll_customer

        self.create_database(self.app_db)
        url = self.url(self.app_db)
        started = time.monotonic()
        upgrade(url)
        self.log(f"migrated {self.app_db} ({time.monotonic() - started:.1f}s)")
        database = Database(url, pool_pre_ping=False)
        try:
            with database.transaction() as session:
                passwords = seed_demo(session=session, password_cost=15)
            self.password = passwords[CASHIER]
            started = time.monotonic()
            with database.transaction() as session:
                program = session.scalar(select(Program))
                for i in range(self.args.customers):
                    enroll_customer(session=session, program=program, first_name=f"Bench{i}", last_name="Customer")
            with database.transaction() as session:
                barcodes = list(session.scalars(select(Card.barcode_token).order_by(Card.id)))
            self.log(f"enrolled {len(barcodes)} customers ({time.monotonic() - started:.1f}s)")
            self.sql("VACUUM ANALYZE", database=self.app_db)
            return barcodes
        finally:
            database.dispose()

    # gunicorn

    def start_gunicorn(self) -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        from app.encryption import generate_key

        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.url(self.app_db),
                "POINTCARD_SECRET_KEY": secrets.token_urlsafe(48),
                "POINTCARD_RATE_LIMITS_ENABLED": "false",
                "POINTCARD_ENV": "production",
                # Production wants the contact-field keys too (the bench customers have no contacts).
                "POINTCARD_PRIVACY__KEYS": json.dumps({"bench": generate_key()}),
                "POINTCARD_PRIVACY__CURRENT_KEY_ID": "bench",
                "POINTCARD_PRIVACY__INDEX_KEY": generate_key(),
                "POINTCARD_MAX_PURCHASES_PER_CARD_PER_HOUR": "1000000",
                # the one login must outlive the run
                "POINTCARD_STAFF_TOKEN_MINUTES": str(
                    max(60, math.ceil((self.args.warmup + self.args.seconds) / 60) + 10)
                ),
            }
        )
        env.pop("REDIS_URL", None)
        command = [
            str(VENV_BIN / "gunicorn"),
            "-w",
            str(self.args.workers),
            "-k",
            "gthread",
            "--threads",
            str(self.args.threads),
            "-b",
            f"127.0.0.1:{port}",
            "--keep-alive",
            "75",
            "--log-level",
            "warning",
            "app:create_app()",
        ]
        self.log("starting " + " ".join(command[1:]))
        log = open(self.gunicorn_log, "wb")  # noqa: SIM115 - closed with the process
        self.gunicorn = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.gunicorn.returncode}:\n{self.gunicorn_tail()}")
            try:
                status, _ = self.request(port, "GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer /healthz within 60s:\n{self.gunicorn_tail()}")
            time.sleep(0.2)
        self.log(f"gunicorn ready on port {port}")
        return port

    def gunicorn_tail(self, lines: int = 30) -> str:
        with suppress(OSError):
            return "\n".join(self.gunicorn_log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop_gunicorn(self) -> None:
        process, self.gunicorn = self.gunicorn, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own session: the master and its workers
            process.wait(timeout=10)
        self.log("gunicorn stopped")

    @staticmethod
    def request(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            payload = json.dumps(body) if body is not None else None
            conn.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def login(self, port: int) -> str:
        status, raw = self.request(port, "POST", "/api/v1/auth/token", {"email": CASHIER, "password": self.password})
        if status != 200:
            raise RuntimeError(f"cashier login failed: {status} {raw[:500]!r}")
        return json.loads(raw)["access_token"]

    # CPU accounting

    def cpu_groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        if self.gunicorn is not None:
            groups["app"] = [self.gunicorn.pid, *_children(self.gunicorn.pid)]
        groups.update(self._pg_groups(self.app_db))
        return groups

    def _pg_groups(self, database: str) -> dict[str, list[int]]:
        """The server processes working for `database` (and the WAL writers), when the server is local."""
        if (self.server.host or "localhost") not in ("127.0.0.1", "localhost", "::1"):
            return {}
        with suppress(Exception):
            rows = self.sql(
                f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}' "
                "OR backend_type IN ('walwriter', 'checkpointer', 'background writer')"
            )
            return {"postgres": [row[0] for row in rows]}
        return {}

    # checks

    def verify(self, expected_purchases: int) -> dict:
        rows = self.sql("SELECT count(*) FROM purchases", database=self.app_db)
        purchases = rows[0][0]
        keys = self.sql("SELECT count(*) FROM idempotency_keys WHERE status_code = 201", database=self.app_db)[0][0]
        mismatched = self.sql(
            """SELECT count(*) FROM customers c
               LEFT JOIN (SELECT customer_id, sum(points) AS points FROM ledger_entries GROUP BY customer_id) l
                 ON l.customer_id = c.id
               WHERE c.points_balance <> coalesce(l.points, 0)""",
            database=self.app_db,
        )[0][0]
        lots = self.sql(
            """SELECT count(*) FROM customers c
               LEFT JOIN (SELECT customer_id, sum(remaining) AS remaining FROM point_lots GROUP BY customer_id) p
                 ON p.customer_id = c.id
               WHERE c.points_balance >= 0 AND c.points_balance <> coalesce(p.remaining, 0)""",
            database=self.app_db,
        )[0][0]
        return {
            "purchases_rows": purchases,
            "answers_201": expected_purchases,
            "idempotency_keys_201": keys,
            "purchases_match": purchases == expected_purchases == keys,
            "customers_ledger_mismatch": mismatched,
            "customers_lots_mismatch": lots,
            "ledger_consistent": mismatched == 0 and lots == 0,
        }

    # pgbench

    def pgbench_env(self) -> dict:
        env = dict(os.environ)
        env.update(
            {
                "PGHOST": self.server.host or "127.0.0.1",
                "PGPORT": str(self.server.port or 5432),
                "PGUSER": self.server.username or "postgres",
            }
        )
        if self.server.password:
            env["PGPASSWORD"] = self.server.password
        return env

    def pgbench_init(self) -> None:
        self.create_database(self.pgbench_db)
        started = time.monotonic()
        subprocess.run(
            [self.args.pgbench, "-i", "-s", str(self.args.pgbench_scale), "-q", self.pgbench_db],
            env=self.pgbench_env(),
            check=True,
            capture_output=True,
            text=True,
        )
        self.log(f"pgbench -i -s {self.args.pgbench_scale} ({time.monotonic() - started:.1f}s)")

    def pgbench_run(self) -> dict:
        command = [
            self.args.pgbench,
            "-b",
            "simple-update",
            "-c",
            str(self.args.clients),
            "-j",
            str(self.args.pgbench_jobs),
            "-T",
            str(round(self.args.seconds)),
            "-n",
            self.pgbench_db,
        ]
        self.log("running pgbench " + " ".join(command[1:]))
        process = subprocess.Popen(
            command, env=self.pgbench_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        cpu = None
        try:
            seconds = round(self.args.seconds)
            if sys.platform == "linux" and seconds >= 4:
                started = time.monotonic()
                _sleep_until(started + 1)  # connections are up
                groups = lambda: {"pgbench": [process.pid], **self._pg_groups(self.pgbench_db)}  # noqa: E731
                before = cpu_snapshot(groups())
                _sleep_until(started + seconds - 1)
                cpu = cpu_delta(before, cpu_snapshot(groups()), seconds - 2)
            stdout, stderr = process.communicate()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        tps = re.search(r"^tps = ([\d.]+) \(without initial connection time\)", done.stdout, re.M)
        latency = re.search(r"^latency average = ([\d.]+) ms", done.stdout, re.M)
        failed = re.search(r"^number of failed transactions: (\d+)", done.stdout, re.M)
        if not tps:
            raise RuntimeError(f"could not read pgbench's tps from:\n{done.stdout}")
        result = {
            "tps": round(float(tps[1]), 1),
            "latency_avg_ms": float(latency[1]) if latency else None,
            "failed": int(failed[1]) if failed else 0,
            "command": "pgbench " + " ".join(command[1:]),
        }
        if cpu:
            result["cpu"] = _per_request(cpu, round(result["tps"] * cpu["seconds"]))
        return result


def _per_request(cpu: dict | None, requests: int) -> dict | None:
    """CPU ms per transaction for each group, and how busy the machine was (others = not us)."""
    if not cpu or not requests:
        return None
    return {
        "ms_per_tx": {k: round(v * 1000 / requests, 2) for k, v in cpu["cpu_seconds"].items() if k != "others"},
        "cores_used": {k: round(v / cpu["seconds"], 2) for k, v in cpu["cpu_seconds"].items()},
        "machine_busy_pct": cpu["machine_busy_pct"],
    }


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with suppress(OSError, IndexError, ValueError), open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients (and pgbench -c)")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds (and pgbench -T)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before measuring")
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (gthread)")
    parser.add_argument(
        "--client-procs", type=int, default=2, help="processes the clients are spread over (threads inside each)"
    )
    parser.add_argument("--customers", type=int, default=2000, help="enrolled cards to draw from")
    parser.add_argument(
        "--pg",
        default=os.environ.get("BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (SQLAlchemy URL; the database part is ignored)",
    )
    parser.add_argument("--pgbench", default="/usr/bin/pgbench")
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument("--pgbench-jobs", type=int, default=2)
    parser.add_argument("--skip-pgbench", action="store_true", help="measure the earn path only")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.workers < 1 or args.threads < 1:
        parser.error("--clients, --seconds, --workers and --threads must be positive")
    return args


def _on_sigterm(_signum, _frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (nohup, &)
    bench = Bench(args)
    wall = time.monotonic()
    figures: dict = {}
    try:
        barcodes = bench.prepare_app_db()
        if not args.skip_pgbench:
            bench.pgbench_init()  # before gunicorn runs, so neither disturbs the other's measurement
        port = bench.start_gunicorn()
        token = bench.login(port)
        bench.checkpoint()
        bench.log(f"load: {args.clients} clients, {args.warmup:g}s warm-up + {args.seconds:g}s measured")
        load = run_load(
            port=port,
            token=token,
            barcodes=barcodes,
            clients=args.clients,
            procs=args.client_procs,
            warmup=args.warmup,
            seconds=args.seconds,
            cpu_groups=bench.cpu_groups if sys.platform == "linux" else None,
        )
        bench.stop_gunicorn()
        check = bench.verify(load["ok_total"])
        pgbench = None
        if not args.skip_pgbench:
            bench.checkpoint()
            pgbench = bench.pgbench_run()
        lat = load["latencies"]
        figures = {
            "params": {
                "clients": args.clients,
                "seconds": args.seconds,
                "warmup": args.warmup,
                "gunicorn_workers": args.workers,
                "gunicorn_threads": args.threads,
                "client_procs": min(args.client_procs, args.clients),
                "cores": os.cpu_count(),
                "customers": len(barcodes),
                "postgres": bench.sql("SHOW server_version")[0][0],
            },
            "earn": {
                "tps": round(load["tps"], 1),
                "requests": load["ok"],
                "p50_ms": round(percentile(lat, 50) * 1000, 2),
                "p99_ms": round(percentile(lat, 99) * 1000, 2),
                "max_ms": round(lat[-1] * 1000, 2) if lat else None,
                "mean_ms": round(sum(lat) / len(lat) * 1000, 2) if lat else None,
                "errors": load["errors"],
                "errors_incl_warmup": load["errors_total"],
                "error_statuses": load["statuses"],
                "exceptions": load["exceptions"],
                "answers_201_incl_warmup": load["ok_total"],
                "cpu": _per_request(load["cpu"], load["ok"]),
            },
            "pgbench_simple_update": pgbench,
            "ratio_earn_to_pgbench": round(load["tps"] / pgbench["tps"], 4) if pgbench else None,
            "check": check,
        }
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    except Exception as exc:
        import traceback

        traceback.print_exc()
        print(f"bench failed: {exc}", file=sys.stderr)
        if bench.gunicorn_log.exists() and bench.gunicorn_tail():
            print("--- gunicorn log (tail) ---\n" + bench.gunicorn_tail(), file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C (or a TERM) must not skip the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            bench.stop_gunicorn()
            bench.drop_databases()
        finally:
            if bench._admin is not None:
                bench._admin.dispose()
            bench.tmp.cleanup()
            signal.signal(signal.SIGINT, signal.default_int_handler)
    figures["wall_seconds"] = round(time.monotonic() - wall, 1)
    print_summary(figures, out=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(figures, indent=2))
    ok = (
        figures["check"]["purchases_match"] and figures["check"]["ledger_consistent"] and figures["earn"]["errors"] == 0
    )
    return 0 if ok else 2


def print_summary(f: dict, out=sys.stdout) -> None:
    p, e, g, c = f["params"], f["earn"], f["pgbench_simple_update"], f["check"]
    rows = [
        ("clients / seconds (+warm-up)", f"{p['clients']} / {p['seconds']:g} (+{p['warmup']:g})"),
        ("gunicorn workers x threads", f"{p['gunicorn_workers']} x {p['gunicorn_threads']} (gthread)"),
        ("cores / client processes", f"{p['cores']} / {p['client_procs']}"),
        ("PostgreSQL", p["postgres"]),
        ("earn tps (201/s)", f"{e['tps']:.1f}  ({e['requests']} purchases)"),
        ("earn latency p50 / p99 / max", f"{e['p50_ms']:.1f} / {e['p99_ms']:.1f} / {e['max_ms']:.1f} ms"),
        (
            "earn errors (non-201)",
            f"{e['errors']}"
            + (f"  {e['error_statuses']} {e['exceptions']}" if e["error_statuses"] or e["exceptions"] else ""),
        ),
    ]
    if e.get("cpu"):
        ms, cores = e["cpu"]["ms_per_tx"], e["cpu"]["cores_used"]
        rows += [
            (
                "earn CPU ms per purchase",
                "  ".join(f"{k} {ms[k]:.2f}" for k in ("app", "postgres", "clients") if k in ms),
            ),
            (
                "cores busy during earn run",
                "  ".join(f"{k} {v:.2f}" for k, v in cores.items())
                + f"  (machine {e['cpu']['machine_busy_pct']:.0f}% busy)",
            ),
        ]
    if g:
        rows += [
            ("pgbench simple-update tps", f"{g['tps']:.1f}  (latency avg {g['latency_avg_ms']} ms)"),
            ("earn tps / pgbench tps", f"{f['ratio_earn_to_pgbench']:.3f}"),
        ]
        if g.get("cpu"):
            cores = g["cpu"]["cores_used"]
            rows.append(
                (
                    "cores busy during pgbench",
                    "  ".join(f"{k} {v:.2f}" for k, v in cores.items())
                    + f"  (machine {g['cpu']['machine_busy_pct']:.0f}% busy)",
                )
            )
    rows += [
        (
            "purchases rows = 201 answers",
            f"{'yes' if c['purchases_match'] else 'NO'}  ({c['purchases_rows']} rows, {c['answers_201']} answers)",
        ),
        ("wall time", f"{f['wall_seconds']:.0f} s"),
    ]
    width = max(len(label) for label, _ in rows)
    print("\nPointcard POS earn benchmark", file=out)
    print("-" * (width + 40), file=out)
    for label, value in rows:
        print(f"{label:<{width}}  {value}", file=out)
    detail = (
        ""
        if c["ledger_consistent"]
        else (
            f" ({c['customers_ledger_mismatch']} balances off their ledger, "
            f"{c['customers_lots_mismatch']} off their open lots)"
        )
    )
    print(f"ledger consistent: {'yes' if c['ledger_consistent'] else 'no'}{detail}", file=out)
    others = max((x["cpu"]["cores_used"].get("others", 0) for x in (e, g or {}) if x.get("cpu")), default=0)
    if others > 0.15:
        print(
            f"warning: other processes used up to {others:.2f} cores during the measurements; "
            "these figures are not representative, run again on a quiet machine",
            file=out,
        )


if __name__ == "__main__":
    sys.exit(main())
