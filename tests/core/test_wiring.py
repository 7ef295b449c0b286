"""app/wiring.py: one place builds the application and connects everything a change sets off."""

from __future__ import annotations

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app import wiring
from app.audit.service import record_flushed_changes
from app.db import Database
from app.extensions import services_of
from app.messaging.models import Message
from app.messaging.outbox import enqueue
from app.messaging.providers import ConsoleSender
from tests.support import make_settings


def test_events_list_prints_every_signal_and_session_hook_with_its_receivers(app):
    output = app.test_cli_runner().invoke(args=["events", "list"]).output
    for signal, receiver in wiring.RECEIVERS:
        assert f"signal {signal.name}" in output
        assert f"-> {receiver.__module__}.{receiver.__qualname__}" in output
    for name, hook in wiring.SESSION_HOOKS:
        assert f"session {name}" in output and f"-> {hook.__module__}.{hook.__qualname__}" in output
    # In the order they run: the Apple pass is marked before the webhook event is collected.
    balance = output.split("signal balance-changed")[1].split("signal ")[0]
    assert balance.index("apple.receivers.customer_changed") < balance.index("webhooks.receivers.points_changed")


def test_the_application_is_built_without_flask_and_its_sessions_know_it(db):
    database = Database(db.url)
    try:
        services = wiring.build(make_settings(db.url), database)
        with database.transaction() as session:
            assert services_of(session) is services
            # The outbox reads the channel's policy and limits from the session's application.
            enqueue(session=session, customer_id=None, channel="email", content={"body": "hi"}, dedupe_key="w-1")
        with database.transaction() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == 1
        assert isinstance(services.senders()["email"], ConsoleSender)
        assert {spec.name for spec in services.channels} == {spec.name for spec in wiring.CHANNELS}
    finally:
        database.dispose()


def test_session_hooks_attach_to_the_applications_sessions_only(app, db):
    assert not event.contains(Session, "after_flush", record_flushed_changes)
    assert event.contains(db.database.session_factory, "after_flush", record_flushed_changes)
    # Building a second application on the same database attaches its hooks once, not twice.
    wiring.build(make_settings(db.url), db.database)
    assert wiring.describe(app.extensions["pointcard"])[-1][2] == ["app.webhooks.receivers.mark_savepoint"]
