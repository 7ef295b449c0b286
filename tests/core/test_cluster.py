"""The production shape on one machine: two web nodes, two schedulers, three outbox workers, one
PostgreSQL. A 20,000-recipient push campaign scheduled over HTTP survives SIGKILL of the active
scheduler (mid-expansion) and of a worker (mid-delivery): every browser shows it exactly once and
no scheduled job runs twice. The orchestration is tests/cluster.py, shared with bench/cluster.py."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest
import requests
from sqlalchemy import text

from jobs import _ADVISORY_LOCK_ID
from tests.cluster import (
    ACTIVE,
    DONE,
    ENROLL_LIMIT,
    Cluster,
    GaveUp,
    quiet_push_log,
    run_campaign,
    seed_audience,
    until,
    vapid_key,
)
from tests.fakes.push import FakePushService
from tests.support import require

# Several OS processes each, with deadlines: under xdist these run one at a time, on one worker
# (`--dist loadgroup`), beside the rest of the suite.
pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("processes")]

RECIPIENTS = 20_000
CONCURRENCY = 8


@pytest.mark.slow
def test_a_campaign_survives_losing_the_active_scheduler_and_a_worker(pg_db, tmp_path):
    quiet_push_log()
    private_pem, public_key = vapid_key()
    push = FakePushService(vapid_public_key=public_key).start()
    cluster = Cluster(pg_db.url, tmp_path, push, private_pem, webs=2, schedulers=2, workers=3, concurrency=CONCURRENCY)
    try:
        passwords, subscriptions = seed_audience(pg_db.database, push, RECIPIENTS)
        cluster.start()
        try:
            report = run_campaign(cluster, pg_db.database, passwords=passwords, subscriptions=subscriptions)
        except GaveUp as exc:
            logs = "\n".join(f"--- {node.name}\n{node.tail(15)}" for node in cluster.nodes())
            pytest.fail(f"{exc}\n{logs}")
    finally:
        cluster.stop()
        push.stop()
    print("\n" + report.summary())

    assert push.refusals == []  # every push carried a valid VAPID signature and an aes128gcm record
    # The scheduler died mid-expansion and the standby carried on from the committed cursor:
    # every member targeted once, one outbox row each, all sent.
    assert report.targets == report.distinct_targets == RECIPIENTS
    assert report.messages == {"sent": RECIPIENTS}
    # Exactly once where it matters: each browser shows the campaign once, under its message's Topic.
    assert (report.shown, report.duplicates, report.missing) == (RECIPIENTS, 0, 0)
    # The worker died holding claimed rows; they went again after the lease. A push it had made
    # but not recorded went again under the same Topic (replacing the waiting copy): never more
    # than its concurrency.
    assert report.re_leased > 0 and report.in_flight_at_kill > 0
    assert report.in_flight_at_kill <= report.resent <= CONCURRENCY
    assert report.pushes == RECIPIENTS + report.resent
    # Every due job ran in one scheduler only: the standby did nothing until it held the lock,
    # and the tick the kill cut off was not run again (the next tick carried on instead).
    assert report.job_repeats == 0, report.job_runs
    assert not report.standby_ran_before_leading
    assert "campaigns.tick" in {job for job, _ in report.cut_off}  # (an hourly job may have been running too)
    assert any(job == "campaigns.tick" for job, _ in report.job_done)
    # The other web node reads the same results.
    assert report.results["targeted"] == RECIPIENTS and report.results["sent"] == RECIPIENTS


@pytest.mark.slow
def test_a_scheduler_that_loses_its_lock_runs_nothing_more_and_exits(pg_db, tmp_path):
    """The lock lives as long as its connection. When the server cuts that connection (restart,
    idle timeout, an operator), the standby leads at once; the old leader must not go on too."""
    cluster = Cluster(pg_db.url, tmp_path, None, vapid_key()[0], webs=0, schedulers=2, workers=0)
    try:
        cluster.start()
        leader, standby = cluster.scheduler_nodes
        until(
            lambda: sum(job == "campaigns.tick" for job, _ in done_runs(leader)) >= 2,
            seconds=60,
            what="the leader to run ticks",
            alive=[leader],
        )
        with pg_db.database.transaction() as session:
            assert session.scalar(
                text(
                    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = :hi AND l.objid = :lo "
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"hi": _ADVISORY_LOCK_ID >> 32, "lo": _ADVISORY_LOCK_ID & 0xFFFFFFFF},
            )
        until(leader.exited, seconds=30, what="the old leader to exit")
        until(
            lambda: cluster.active_scheduler(pg_db.database) is standby,
            seconds=30,
            what="the standby to lead",
            alive=[standby],
        )
        until(
            lambda: sum(job == "campaigns.tick" for job, _ in done_runs(standby)) >= 2,
            seconds=60,
            what="the standby to run ticks",
            alive=[standby],
        )
    finally:
        cluster.stop()

    assert leader.popen.returncode == 1 and leader.said("lost the scheduler lock")
    runs = done_runs(leader) + done_runs(standby)
    assert len(runs) == len(set(runs)), runs
    # Every run the old leader started, it started while PostgreSQL still said it held the lock:
    # before the standby had it.
    took_over = stamp(next(line for line in standby.lines() if ACTIVE in line))
    assert all(stamp(line) < took_over for line in leader.lines() if " starting" in line)


@pytest.mark.slow  # 2 s alone, 10 s in the PostgreSQL pass beside the rest: gunicorn nodes and a Redis
def test_web_nodes_share_one_rate_limit_through_redis(pg_db, tmp_path):
    """Enrolments from one address, alternating between the two web nodes: the per-IP limit
    is one count in Redis, not one per node."""
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    cluster = Cluster(pg_db.url, tmp_path, None, vapid_key()[0], webs=2, schedulers=0, workers=0)
    try:
        cluster.start()
        assert cluster.redis_url
        limit = int(ENROLL_LIMIT.split()[0])
        statuses = [
            requests.post(f"{cluster.web_urls[n % 2]}/api/v1/enroll", json={}, timeout=10).status_code
            for n in range(limit + 2)
        ]
    finally:
        cluster.stop()
    assert 429 not in statuses[:limit] and statuses[limit:] == [429, 429], statuses


def done_runs(node) -> list[tuple[str, str]]:
    return [match.groups() for line in node.lines() if (match := DONE.search(line))]


def stamp(line: str) -> datetime:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
