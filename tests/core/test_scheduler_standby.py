"""Two real `flask scheduler run` processes on one PostgreSQL database: one works, one waits, no run twice."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select

from app import create_app
from app.campaigns.models import CampaignRun, CampaignTarget
from app.db import utcnow
from app.messaging.models import Message
from app.roles import Role
from tests.support import World, make_settings

# Several OS processes each, with deadlines: under xdist these run one at a time, on one worker
# (`--dist loadgroup`), beside the rest of the suite.
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("processes")]

DONE = re.compile(r"job (\S+) done \(due at ([^)]+)\)")


class Scheduler:
    """A scheduler process whose log lines are collected as they come."""

    def __init__(self, name: str, url: str, cwd) -> None:
        env = {
            **os.environ,
            "FLASK_APP": "app",
            "DATABASE_URL": url,
            "POINTCARD_CAMPAIGNS__TICK_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.name, self.lines = name, []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "scheduler", "run"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, what, timeout: float = 60) -> None:
        """Poll (with a deadline) until `what()` holds; the process must stay up meanwhile."""
        deadline = time.monotonic() + timeout
        while not what():
            if self.process.poll() is not None and not what():
                raise AssertionError(f"scheduler {self.name} exited:\n" + "\n".join(self.lines))
            if time.monotonic() > deadline:
                raise AssertionError(f"scheduler {self.name}: timed out:\n" + "\n".join(self.lines))
            time.sleep(0.05)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def runs(self) -> list[tuple[str, str]]:
        return [match.groups() for line in self.lines if (match := DONE.search(line))]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(timeout=5)
            self.process.stdout.close()


def test_a_second_scheduler_waits_and_takes_over_and_no_due_run_happens_twice(pg_db, tmp_path):
    app = create_app(make_settings(pg_db.url), database=pg_db.database)
    world = World.seed(app, pg_db.database)
    for n in range(3):
        world.enroll(f"Customer {n}", phone=f"+1415555060{n}", consents={"sms": True})
    headers = world.headers(Role.marketer)
    campaign = world.client.post(
        "/api/v1/campaigns",
        headers=headers,
        json={
            "name": "Now",
            "rules": {"field": "points", "op": "gte", "value": 0},
            "channels": ["sms"],
            "templates": {"sms": "Hello {{ first_name }}"},
            "send_at": utcnow().isoformat(),
        },
    ).get_json()
    assert world.client.post(f"/api/v1/campaigns/{campaign['id']}/schedule", headers=headers).status_code == 200

    first = Scheduler("A", pg_db.url, tmp_path)
    second = None
    try:
        first.wait_for(lambda: first.said("this process is now the active scheduler"))
        second = Scheduler("B", pg_db.url, tmp_path)
        second.wait_for(lambda: second.said("waiting to become the active scheduler"))
        first.wait_for(lambda: sum(job == "campaigns.tick" for job, _ in first.runs()) >= 3)
        assert second.runs() == [] and not second.said("now the active scheduler")  # a standby does nothing

        first.stop()  # the active one goes away: the standby takes over at once
        second.wait_for(lambda: second.said("this process is now the active scheduler"))
        second.wait_for(lambda: sum(job == "campaigns.tick" for job, _ in second.runs()) >= 2)
    finally:
        first.stop()
        if second is not None:
            second.stop()

    runs = first.runs() + second.runs()
    assert len(runs) == len(set(runs)), runs  # every due time ran in one process only
    took_over = next(i for i, line in enumerate(second.lines) if "now the active scheduler" in line)
    assert all(not DONE.search(line) for line in second.lines[:took_over])
    assert first.said(f"campaign {campaign['id']}: send") and not second.said(f"campaign {campaign['id']}: send")
    with pg_db.database.transaction() as session:
        assert session.scalar(select(func.count(CampaignRun.id))) == 1
        assert session.scalar(select(func.count(CampaignTarget.id))) == 3
        assert session.scalar(select(func.count(Message.id)).where(Message.template.like("campaign:%"))) == 3
