"""Two outbox workers, one SIGKILLed while its sends are provably in flight: nothing is lost,
nothing reaches the provider twice (counted per message id at the provider)."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from app.db import utcnow
from app.messaging.models import Message, MessageState
from tests.fakes.loopback import LoopbackProvider
from tests.fakes.worker import CHANNEL
from tests.support import ROOT

MESSAGES = 10_000
KILL_AFTER = 3_000
CONCURRENCY = 8


def queue_many(database, count: int) -> None:
    now = utcnow()
    rows = [
        {
            "channel": CHANNEL,
            "template": "",
            "content": {"n": n},
            "dedupe_key": f"crash-{n}",
            "marketing": False,
            "state": MessageState.queued,
            "not_before": now,
            "attempts": 0,
            "details": {},
            "created_at": now,
        }
        for n in range(count)
    ]
    with database.transaction() as session:
        session.execute(insert(Message), rows)


def start_worker(url: str, database_url: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        "POINTCARD_ENV": "test",
        "POINTCARD_SECRET_KEY": "crash-test-secret-" + "0123456789abcdef" * 4,
        "POINTCARD_MESSAGING__BATCH_SIZE": "200",
        "POINTCARD_MESSAGING__CONCURRENCY": str(CONCURRENCY),
        "POINTCARD_MESSAGING__LEASE_SECONDS": "4",
        "POINTCARD_MESSAGING__SEND_TIMEOUT_SECONDS": "2.5",
        "POINTCARD_MESSAGING__PUSH_TIMEOUT_SECONDS": "2",
        "POINTCARD_MESSAGING__TWILIO_TIMEOUT_SECONDS": "2",
        "POINTCARD_MESSAGING__IDLE_SECONDS": "0.1",
    }
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.worker", url],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def until(condition, *, seconds: float, what: str) -> None:
    """Poll (the fake, the database) until the condition holds; fail after the deadline."""
    deadline, tick = time.monotonic() + seconds, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {seconds} s waiting for {what}")
        tick.wait(0.02)


def count_sent(database) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(Message).where(Message.state == MessageState.sent))


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.xdist_group("processes")  # OS processes with deadlines: one such test at a time
def test_a_worker_killed_mid_run_loses_nothing_and_sends_nothing_twice(pg_db, tmp_path):
    provider = LoopbackProvider().start()
    queue_many(pg_db.database, MESSAGES)
    # Once KILL_AFTER messages are in, the provider takes each request but holds its answer.
    provider.hold_after(KILL_AFTER)
    started = time.monotonic()
    victim, survivor = (start_worker(provider.url, pg_db.url, tmp_path / f"worker-{n}.log") for n in (1, 2))
    try:
        until(lambda: provider.in_flight[str(victim.pid)] > 0, seconds=60, what="the victim's sends in flight")
        held = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        provider.release()
        until(lambda: count_sent(pg_db.database) == MESSAGES, seconds=120, what="every message sent")
    finally:
        for worker in (victim, survivor):
            if worker.poll() is None:
                worker.terminate()
            worker.wait(timeout=30)
        provider.stop()
    finished = time.monotonic()
    assert victim.returncode == -signal.SIGKILL
    assert survivor.returncode == 0, (tmp_path / "worker-2.log").read_text()[-3000:]

    with pg_db.database.transaction() as session:
        rows = session.execute(select(Message.id, Message.state, Message.provider_id, Message.attempts)).all()
    assert len(rows) == MESSAGES and {state for _, state, _, _ in rows} == {MessageState.sent}
    # Exactly once at the provider, counted by message id.
    assert set(provider.deliveries) == {str(message_id) for message_id, _, _, _ in rows}
    assert set(provider.deliveries.values()) == {1}
    assert all(provider.accepted[f"message-{message_id}"] == provider_id for message_id, _, provider_id, _ in rows)
    # The kill did cut sends off mid-flight: those went again, under the same key, from the
    # survivor. No more than one worker's concurrency were ever sent but unrecorded.
    resent = [message_id for message_id, count in provider.requests.items() if count > 1]
    assert resent and provider.in_flight[str(victim.pid)] <= len(resent) <= CONCURRENCY
    assert {tuple(provider.senders[m]) for m in resent} == {(str(victim.pid), str(survivor.pid))}
    attempts = Counter(attempt for _, _, _, attempt in rows)
    assert attempts[2] >= len(resent)
    print(
        f"\n{MESSAGES} messages; killed a worker with {provider.in_flight[str(victim.pid)]} sends in flight; "
        f"{len(resent)} resent under the same idempotency key; {attempts[2]} rows re-leased; "
        f"{held - started:.1f} s to the kill, {finished - held:.1f} s after it"
    )
