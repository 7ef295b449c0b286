"""The production shape on one machine: two web nodes, two schedulers, three outbox workers, one
PostgreSQL. A 20,000-recipient push campaign scheduled over HTTP survives SIGKILL of the active
scheduler (mid-expansion) and of a worker (mid-delivery): every browser shows it exactly once and
no scheduled job runs twice. The orchestration is tests/cluster.py, shared with bench/cluster.py."""

from __future__ import annotations

import pytest

from tests.cluster import Cluster, GaveUp, quiet_push_log, run_campaign, seed_audience, vapid_key
from tests.fakes.push import FakePushService

pytestmark = pytest.mark.postgres

RECIPIENTS = 20_000
CONCURRENCY = 8


def test_a_campaign_survives_losing_the_active_scheduler_and_a_worker(pg_db, tmp_path):
    quiet_push_log()
    private_pem, public_key = vapid_key()
    push = FakePushService(vapid_public_key=public_key).start()
    cluster = Cluster(pg_db.url, tmp_path, push, private_pem, webs=2, schedulers=2, workers=3,
                      concurrency=CONCURRENCY)
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
    assert [job for job, _ in report.cut_off] == ["campaigns.tick"]
    assert any(job == "campaigns.tick" for job, _ in report.job_done)
    # The other web node reads the same results.
    assert report.results["targeted"] == RECIPIENTS and report.results["sent"] == RECIPIENTS
