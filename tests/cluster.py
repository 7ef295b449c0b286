"""A whole deployment on one machine, for tests/core/test_cluster.py and bench/cluster.py.

Against one PostgreSQL database it starts, each as its own OS process with production settings:
web nodes (gunicorn, a port each), schedulers (`flask scheduler run`: one holds the advisory
lock, the others wait as hot standbys) and outbox workers (`flask messaging work`). Web Push goes
to a local push service (tests/fakes/push.py) that checks every VAPID signature and decrypts
every payload, like a browser vendor's.

`run_campaign` seeds an audience with push subscriptions, has a marketer schedule a push
campaign through one web node's HTTP API, SIGKILLs the active scheduler while it is expanding
the audience into outbox rows and one worker while it is sending, waits for the campaign to
drain, and counts what the push service got and what each scheduler ran.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, insert, select, text

from app.campaigns.models import CampaignRun, CampaignTarget
from app.db import Database, utcnow
from app.demo.seed import seed_demo
from app.loyalty.models import Channel, Consent, Customer, Program
from app.messaging.models import Message, MessageState, PushSubscription
from jobs import _ADVISORY_LOCK_ID
from tests.fakes.push import FakePushService

ROOT = Path(__file__).resolve().parent.parent
SUBMITTED = re.compile(r"job (\S+) submitted \(due at ([^)]+)\)")
DONE = re.compile(r"job (\S+) done \(due at ([^)]+)\)")
ACTIVE = "this process is now the active scheduler"
STANDBY = "waiting to become the active scheduler"
ALL_DAY = '{"start": "00:00", "end": "23:59:59.999999"}'
DISCLOSURE = "Yes, send me Pointcard offers by push notification. Reply STOP to opt out."
TERMINAL = (MessageState.sent, MessageState.failed, MessageState.suppressed)
# How long the push service may hold its answers; under the push timeout below.
HOLD_SECONDS = 4
# Enrolments per client IP and minute, across all web nodes when they share a Redis.
ENROLL_LIMIT = "6 per minute"


class GaveUp(AssertionError):
    pass


def until(condition, *, seconds: float, what: str, every: float = 0.1, alive=()) -> None:
    """Poll until `condition()` holds; give up after `seconds`, or as soon as a process in
    `alive` exits (its log tail in the message)."""
    deadline = time.monotonic() + seconds
    while not condition():
        for process in alive:
            if process.exited():
                raise GaveUp(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        if time.monotonic() > deadline:
            raise GaveUp(f"gave up after {seconds} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def vapid_key() -> tuple[str, str]:
    """A fresh VAPID key pair: the private key PEM and the public key as push services see it."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return pem, base64.urlsafe_b64encode(point).rstrip(b"=").decode()


class Process:
    """One node: a child process whose output goes to its own log file."""

    def __init__(self, name: str, argv: list[str], env: dict, log: Path) -> None:
        self.name, self.log = name, log
        with log.open("wb") as output:
            self.popen = subprocess.Popen(
                argv, cwd=ROOT, env={**env, "PGAPPNAME": name}, stdout=output, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def said(self, words: str) -> bool:
        return any(words in line for line in self.lines())

    def tail(self, count: int = 40) -> str:
        return "\n".join(self.lines()[-count:])

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Cluster:
    """The nodes of one deployment, all against `database_url`."""

    database_url: str
    workdir: Path
    push: FakePushService
    vapid_private_pem: str
    webs: int = 2
    schedulers: int = 2
    workers: int = 3
    concurrency: int = 8
    web_nodes: list[Process] = field(default_factory=list)
    scheduler_nodes: list[Process] = field(default_factory=list)
    worker_nodes: list[Process] = field(default_factory=list)
    web_urls: list[str] = field(default_factory=list)
    # With a redis-server on the PATH, the web nodes keep their rate limits in one Redis.
    redis: bool = True
    redis_node: Process | None = None
    redis_url: str | None = None
    # Every node shares the contact fields' keys, as it shares the signing secret.
    privacy_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    privacy_index_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())

    def environment(self) -> dict[str, str]:
        """What every node gets: production settings, the shared secret, the push service."""
        return {
            **os.environ,
            "FLASK_APP": "app",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.database_url,
            "POINTCARD_ENV": "production",
            "POINTCARD_SECRET_KEY": "cluster-signing-secret-" + "0123456789abcdef" * 4,
            "POINTCARD_PUBLIC_BASE_URL": "http://cluster.test",
            "POINTCARD_PROXY_HOPS": "0",
            "POINTCARD_PRIVACY__KEYS": json.dumps({"k1": self.privacy_key}),
            "POINTCARD_PRIVACY__CURRENT_KEY_ID": "k1",
            "POINTCARD_PRIVACY__INDEX_KEY": self.privacy_index_key,
            "POINTCARD_CAMPAIGNS__TICK_SECONDS": "1",
            "POINTCARD_MESSAGING__PUSH_BACKEND": "webpush",
            "POINTCARD_MESSAGING__VAPID_PRIVATE_KEY": self.vapid_private_pem,
            "POINTCARD_MESSAGING__VAPID_SUBJECT": "mailto:ops@cluster.test",
            "POINTCARD_MESSAGING__PUSH_ALLOW_HTTP": "true",
            "POINTCARD_MESSAGING__PUSH_ALLOWED_HOSTS": '["127.0.0.1"]',
            "POINTCARD_MESSAGING__SMS_BACKEND": "console",
            "POINTCARD_MESSAGING__VOICE_BACKEND": "console",
            "POINTCARD_MESSAGING__QUIET_HOURS": ALL_DAY,
            "POINTCARD_MESSAGING__BATCH_SIZE": "100",
            "POINTCARD_MESSAGING__CONCURRENCY": str(self.concurrency),
            # A killed worker's rows come back after 12 s; every call ends inside its lease, and a
            # push the service holds (HOLD_SECONDS) does not time out.
            "POINTCARD_MESSAGING__LEASE_SECONDS": "12",
            "POINTCARD_MESSAGING__SEND_TIMEOUT_SECONDS": "9",
            "POINTCARD_MESSAGING__PUSH_TIMEOUT_SECONDS": "8",
            "POINTCARD_MESSAGING__TWILIO_TIMEOUT_SECONDS": "8",
            "POINTCARD_MESSAGING__IDLE_SECONDS": "0.2",
            "POINTCARD_ENROLL_RATE_LIMIT": ENROLL_LIMIT,
            **(
                {"REDIS_URL": self.redis_url, "POINTCARD_RATE_LIMIT_KEY_PREFIX": f"cluster-{os.getpid()}"}
                if self.redis_url
                else {}
            ),
        }

    def _start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if not (self.redis and binary):
            return
        port = free_port()
        self.redis_node = Process(
            "redis",
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            dict(os.environ),
            self.workdir / "redis.log",
        )
        until(
            lambda: self.redis_node.said("Ready to accept connections"),
            seconds=30,
            what="redis",
            alive=[self.redis_node],
        )
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> Cluster:
        self._start_redis()
        env = self.environment()
        for n in range(1, self.webs + 1):
            port = free_port()
            self.web_urls.append(f"http://127.0.0.1:{port}")
            self.web_nodes.append(
                Process(
                    f"pointcard-web-{n}",
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "--bind",
                        f"127.0.0.1:{port}",
                        "--workers",
                        "1",
                        "--worker-class",
                        "gthread",
                        "--threads",
                        "4",
                        "app:create_app()",
                    ],
                    env,
                    self.workdir / f"web-{n}.log",
                )
            )
        for n in range(1, self.schedulers + 1):
            node = Process(
                f"pointcard-scheduler-{n}",
                [sys.executable, "-m", "flask", "scheduler", "run"],
                env,
                self.workdir / f"scheduler-{n}.log",
            )
            self.scheduler_nodes.append(node)
            if n == 1:  # the first one up is the active one: the test knows whom to expect
                until(lambda node=node: node.said(ACTIVE), seconds=60, what="the first scheduler to lead", alive=[node])
        for n in range(1, self.workers + 1):
            self.worker_nodes.append(
                Process(
                    f"pointcard-worker-{n}",
                    [sys.executable, "-m", "flask", "messaging", "work"],
                    env,
                    self.workdir / f"worker-{n}.log",
                )
            )
        for node, url in zip(self.web_nodes, self.web_urls, strict=True):
            until(lambda url=url: _healthy(url), seconds=60, what=f"{node.name} to answer /healthz", alive=[node])
        for node in self.scheduler_nodes[1:]:
            until(lambda node=node: node.said(STANDBY), seconds=60, what=f"{node.name} to wait", alive=[node])
        for node in self.worker_nodes:
            until(
                lambda node=node: node.said("message worker started"),
                seconds=60,
                what=f"{node.name} to start",
                alive=[node],
            )
        return self

    def nodes(self) -> list[Process]:
        return [*self.web_nodes, *self.scheduler_nodes, *self.worker_nodes, *filter(None, [self.redis_node])]

    def stop(self) -> None:
        for node in self.nodes():
            if not node.exited():
                node.popen.send_signal(signal.SIGTERM)
        for node in self.nodes():
            node.stop()

    def active_scheduler(self, database: Database) -> Process | None:
        """The scheduler whose connection holds the advisory lock, as PostgreSQL sees it."""
        with database.transaction() as session:
            name = session.scalar(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"hi": _ADVISORY_LOCK_ID >> 32, "lo": _ADVISORY_LOCK_ID & 0xFFFFFFFF},
            )
        return next((node for node in self.scheduler_nodes if node.name == name), None)


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


# --- the audience ------------------------------------------------------------------------------


def seed_audience(database: Database, push: FakePushService, count: int) -> tuple[dict[str, str], dict[int, str]]:
    """The demo program and staff, and `count` customers each with a push opt-in and one browser
    subscription. Returns the staff passwords and customer id -> push subscription name."""
    with database.transaction() as session:
        passwords = seed_demo(session=session, password_cost=10)
        program_id = session.scalar(select(Program.id))
    subscriptions: dict[int, str] = {}
    now = utcnow()
    for start in range(0, count, 5000):
        numbers = range(start, min(count, start + 5000))
        with database.transaction() as session:
            ids = session.scalars(
                insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                [
                    {
                        "program_id": program_id,
                        "first_name": f"Member{n}",
                        "last_name": "Cluster",
                        "timezone": "UTC",
                        "referral_code": f"CL{n:010d}",
                        "points_balance": 0,
                        "created_at": now,
                    }
                    for n in numbers
                ],
            ).all()
            session.execute(
                insert(Consent),
                [
                    {
                        "customer_id": i,
                        "channel": Channel.push,
                        "granted": True,
                        "source": "cluster-seed",
                        "disclosure": DISCLOSURE,
                        "recorded_at": now,
                    }
                    for i in ids
                ],
            )
            rows = []
            for customer_id in ids:
                browser = push.new_subscription()
                subscriptions[customer_id] = browser["endpoint"].rsplit("/", 1)[1]
                rows.append(
                    {
                        "customer_id": customer_id,
                        "endpoint": browser["endpoint"],
                        "p256dh": browser["keys"]["p256dh"],
                        "auth": browser["keys"]["auth"],
                        "user_agent": "cluster",
                        "created_at": now,
                    }
                )
            session.execute(insert(PushSubscription), rows)
    return passwords, subscriptions


# --- one campaign through the cluster ------------------------------------------------------------


@dataclass
class Report:
    recipients: int
    campaign_id: int
    targets: int = 0
    distinct_targets: int = 0
    messages: Counter = field(default_factory=Counter)  # state -> rows
    re_leased: int = 0  # rows claimed more than once: what the killed worker held
    in_flight_at_kill: int = 0  # at least this many of the victim's pushes were at the service, unanswered
    pushes: int = 0  # pushes the push service accepted, resends included
    shown: int = 0  # notifications the browsers show: one per (subscription, Topic)
    duplicates: int = 0  # browsers that would show the campaign more than once
    missing: int = 0  # recipients whose browser shows nothing
    resent: int = 0  # pushes repeated under the same Topic (the killed worker's in-flight ones)
    killed_scheduler: str = ""
    killed_worker: str = ""
    standby: str = ""
    job_runs: Counter = field(default_factory=Counter)  # (job, due) -> submissions across schedulers
    job_done: Counter = field(default_factory=Counter)  # (job, due) -> completions across schedulers
    cut_off: list = field(default_factory=list)  # (job, due) submitted by the killed scheduler, never done
    standby_ran_before_leading: bool = False
    timings: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)  # GET .../results from the other web node

    @property
    def job_repeats(self) -> int:
        return sum(n - 1 for n in self.job_runs.values() if n > 1) + sum(n - 1 for n in self.job_done.values() if n > 1)

    def summary(self) -> str:
        t = self.timings
        kills = (
            (
                f"scheduler {self.killed_scheduler} killed at {t['scheduler_killed']:.1f} s, {self.standby} leading "
                f"{t['takeover']:.2f} s later; worker {self.killed_worker} killed at {t['worker_killed']:.1f} s "
                f"with {self.in_flight_at_kill}+ pushes unanswered ({self.re_leased} rows re-leased); "
            )
            if self.killed_scheduler
            else "no kills; "
        )
        return (
            f"{self.recipients} recipients; {t['drain']:.1f} s from schedule to the last push "
            f"({self.recipients / t['drain']:.0f} messages/s end to end); targeted in {t['targeted']:.1f} s; "
            f"{kills}pushes {self.pushes}, resent under the same Topic {self.resent}; shown {self.shown}, "
            f"duplicates {self.duplicates}, missing {self.missing}; job runs {sum(self.job_runs.values())} "
            f"({len(self.cut_off)} cut off by the kill), repeated {self.job_repeats}"
        )


def login(url: str, email: str, password: str) -> dict[str, str]:
    response = requests.post(f"{url}/api/v1/auth/token", json={"email": email, "password": password}, timeout=10)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def schedule_campaign(url: str, headers: dict) -> int:
    """A marketer's push campaign to every member, now, with no holdout."""
    created = requests.post(
        f"{url}/api/v1/campaigns",
        headers=headers,
        timeout=30,
        json={
            "name": "Cluster weekend",
            "rules": {"field": "points", "op": "gte", "value": 0},
            "channels": ["push"],
            "templates": {"push": {"title": "Double points", "body": "{{ first_name }}, double points this weekend"}},
            "send_at": utcnow().isoformat(),
            "holdout_percent": 0,
        },
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    scheduled = requests.post(f"{url}/api/v1/campaigns/{campaign_id}/schedule", headers=headers, timeout=30)
    assert scheduled.status_code == 200, scheduled.text
    return campaign_id


def _progress(database: Database, campaign_id: int) -> tuple[int, bool, Counter]:
    """Targets so far, whether the send is done, and the campaign's outbox rows by state."""
    with database.transaction() as session:
        run = session.execute(
            select(CampaignRun.targeted, CampaignRun.state).where(CampaignRun.campaign_id == campaign_id)
        ).first()
        states = Counter(
            dict(
                session.execute(
                    select(Message.state, func.count())
                    .where(Message.template == f"campaign:{campaign_id}")
                    .group_by(Message.state)
                ).all()
            )
        )
    if run is None:
        return 0, False, states
    return run.targeted, run.state.value == "done", states


def run_campaign(
    cluster: Cluster,
    database: Database,
    *,
    passwords: dict,
    subscriptions: dict[int, str],
    kill_scheduler_at: float = 0.25,
    kill_worker_at: float = 0.4,
    no_kills: bool = False,
    timeout: float = 400,
) -> Report:
    """Schedule through web node 1, kill the active scheduler once `kill_scheduler_at` of the
    audience is targeted and worker 1 once `kill_worker_at` is sent, wait for the end, count."""
    recipients = len(subscriptions)
    leader = cluster.active_scheduler(database)
    assert leader is cluster.scheduler_nodes[0], f"PostgreSQL says {leader and leader.name} holds the lock"
    headers = login(cluster.web_urls[0], "marketer@example.com", passwords["marketer@example.com"])
    started = time.monotonic()
    campaign_id = schedule_campaign(cluster.web_urls[0], headers)
    report = Report(recipients=recipients, campaign_id=campaign_id)
    alive = [*cluster.worker_nodes, *cluster.scheduler_nodes, *cluster.web_nodes]
    if not no_kills:
        _kill_leader(
            report,
            cluster,
            database,
            leader,
            alive,
            at=int(recipients * kill_scheduler_at),
            started=started,
            timeout=timeout,
        )
        _kill_worker(
            report, cluster, database, alive, at=int(recipients * kill_worker_at), started=started, timeout=timeout
        )

    until(lambda: _progress(database, campaign_id)[1], seconds=timeout, what="every target queued", alive=alive)
    report.timings["targeted"] = time.monotonic() - started

    def drained() -> bool:
        _, done, states = _progress(database, campaign_id)
        return done and sum(states[s] for s in TERMINAL) == sum(states.values())

    until(drained, seconds=timeout, what="the outbox to drain", alive=alive)
    report.timings["drain"] = time.monotonic() - started
    _count(report, cluster, database, subscriptions, None if no_kills else leader)
    answer = requests.get(f"{cluster.web_urls[-1]}/api/v1/campaigns/{campaign_id}/results", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    report.results = answer.json()["total"]
    return report


def _kill_leader(
    report: Report,
    cluster: Cluster,
    database: Database,
    leader: Process,
    alive: list,
    *,
    at: int,
    started: float,
    timeout: float,
) -> None:
    """SIGKILL the scheduler holding the lock while it expands the audience; time the takeover."""
    until(
        lambda: _progress(database, report.campaign_id)[0] >= at,
        seconds=timeout,
        what="the audience to expand",
        alive=alive,
    )
    assert not _progress(database, report.campaign_id)[1], "the send finished before the scheduler was killed"
    leader.kill()
    killed = time.monotonic()
    report.killed_scheduler, report.timings["scheduler_killed"] = leader.name, killed - started
    alive.remove(leader)
    until(
        lambda: cluster.active_scheduler(database) not in (None, leader),
        seconds=60,
        what="a standby to lead",
        every=0.02,
        alive=alive,
    )
    report.timings["takeover"] = time.monotonic() - killed
    report.standby = cluster.active_scheduler(database).name


def _kill_worker(
    report: Report, cluster: Cluster, database: Database, alive: list, *, at: int, started: float, timeout: float
) -> None:
    """SIGKILL worker 1 while pushes it made are at the push service, their answers not yet back.

    The push service holds its answers for a moment: each worker has at most `concurrency`
    sends out, so more than (workers - 1) x concurrency held pushes means the victim's are among
    them. The hold stays well under the push timeout, so no survivor's send times out."""
    victim, push = cluster.worker_nodes[0], cluster.push
    until(
        lambda: _progress(database, report.campaign_id)[2][MessageState.sent] >= at,
        seconds=timeout,
        what="sending to be under way",
        alive=alive,
    )
    others = (cluster.workers - 1) * cluster.concurrency
    deadline = time.monotonic() + timeout
    while not victim.exited():
        push.hold()
        try:
            until(
                lambda: push.in_flight > others,
                seconds=HOLD_SECONDS,
                what="the victim's pushes",
                every=0.01,
                alive=alive,
            )
        except GaveUp:
            if time.monotonic() > deadline:
                raise
            continue  # not every worker had a full batch: answer, and hold again
        finally:
            if push.in_flight > others:
                report.in_flight_at_kill = push.in_flight - others
                victim.kill()
            push.release()
    report.killed_worker, report.timings["worker_killed"] = victim.name, time.monotonic() - started
    alive.remove(victim)


def _count(
    report: Report, cluster: Cluster, database: Database, subscriptions: dict[int, str], killed: Process | None
) -> None:
    with database.transaction() as session:
        report.targets = session.scalar(
            select(func.count(CampaignTarget.id)).where(CampaignTarget.campaign_id == report.campaign_id)
        )
        report.distinct_targets = session.scalar(
            select(func.count(func.distinct(CampaignTarget.customer_id))).where(
                CampaignTarget.campaign_id == report.campaign_id
            )
        )
        rows = session.execute(
            select(Message.id, Message.customer_id, Message.state, Message.attempts).where(
                Message.template == f"campaign:{report.campaign_id}"
            )
        ).all()
    report.messages = Counter(row.state.value for row in rows)
    report.re_leased = sum(row.attempts > 1 for row in rows)
    expected = {(subscriptions[row.customer_id], f"pointcard-{row.id}") for row in rows}
    topics = cluster.push.topics.copy()
    report.pushes = sum(topics.values())
    report.resent = sum(n - 1 for n in topics.values())
    shown = Counter(name for name, _ in topics)
    report.shown = sum(shown.values())
    report.duplicates = sum(n > 1 for n in shown.values()) + len(set(topics) - expected)
    report.missing = sum(name not in shown for name in subscriptions.values()) + len(expected - set(topics))
    runs, done = Counter(), Counter()
    for node in cluster.scheduler_nodes:
        lines = node.lines()
        runs.update(match.groups() for line in lines if (match := SUBMITTED.search(line)))
        done.update(match.groups() for line in lines if (match := DONE.search(line)))
        if node is not killed:
            leading = next((i for i, line in enumerate(lines) if ACTIVE in line), len(lines))
            report.standby_ran_before_leading |= any(SUBMITTED.search(line) for line in lines[:leading])
    report.job_runs, report.job_done = runs, done
    killed_lines = killed.lines() if killed is not None else []
    report.cut_off = sorted(
        {m.groups() for line in killed_lines if (m := SUBMITTED.search(line))}
        - {m.groups() for line in killed_lines if (m := DONE.search(line))}
    )


def quiet_push_log() -> None:
    """The local push service would log every request (20,000 lines)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def as_json(report: Report) -> str:
    return json.dumps(
        {
            "recipients": report.recipients,
            "targets": report.targets,
            "messages": dict(report.messages),
            "pushes": report.pushes,
            "resent": report.resent,
            "shown": report.shown,
            "duplicates": report.duplicates,
            "missing": report.missing,
            "re_leased": report.re_leased,
            "job_runs": sum(report.job_runs.values()),
            "job_repeats": report.job_repeats,
            "cut_off": report.cut_off,
            "timings": report.timings,
            "messages_per_second": report.recipients / report.timings["drain"],
        },
        indent=2,
    )
