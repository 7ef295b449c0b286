"""Commands and processes around the API: seed, migrations, scheduler. (The outbox: tests/messaging/test_outbox.py.)"""

from sqlalchemy import func, inspect, select, text

from app.auth.models import StaffUser
from app.db_cli import alembic_config
from app.loyalty.models import Program, Reward, Store, Tier


def _counts(database):
    with database.transaction() as session:
        return [
            session.scalar(select(func.count()).select_from(model))
            for model in (Program, Store, Tier, Reward, StaffUser)
        ]


def test_demo_seed_prints_passwords_once_and_a_second_run_changes_nothing(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0 and "admin@example.com" in first.output
    before = _counts(db.database)
    assert before == [1, 3, 3, 5, 3]
    second = runner.invoke(args=["demo", "seed"])
    assert second.exit_code == 0 and "nothing changed" in second.output
    assert "admin@example.com" not in second.output
    assert _counts(db.database) == before


def test_migrations_go_down_and_up_again(db):
    from alembic import command

    config = alembic_config(db.url)
    db.database.engine.dispose()
    command.downgrade(config, "base")
    assert set(inspect(db.database.engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(config, "head")
    db.database.engine.dispose()
    assert {"ledger_entries", "apscheduler_jobs", "idempotency_keys"} <= set(
        inspect(db.database.engine).get_table_names()
    )


def test_verify_balances_checks_the_cache_against_the_ledger(world):
    card = world.enroll()
    world.purchase(card["barcode"], "3.00")
    runner = world.app.test_cli_runner()
    assert "every balance matches" in runner.invoke(args=["loyalty", "verify-balances"]).output
    with world.database.transaction() as session:
        session.execute(text("UPDATE customers SET points_balance = 1"))
    result = runner.invoke(args=["loyalty", "verify-balances"])
    assert result.exit_code == 1 and "cached 1, ledger 80" in result.output


def test_the_scheduler_lists_its_jobs_and_keeps_them_in_the_database(app, db):
    from jobs import build_scheduler, forget_retired_jobs, run_job

    services = app.extensions["pointcard"]
    output = app.test_cli_runner().invoke(args=["scheduler", "list"]).output
    for job in services.jobs:
        assert job.name in output
    assert "campaigns.tick                   interval seconds=60" in output  # its interval comes from the settings
    scheduler = build_scheduler(services)
    scheduler.start(paused=True)
    try:
        # A job an older release stored under a name the code no longer has.
        scheduler.add_job(
            run_job, "interval", seconds=30, args=["geo.refresh_wallet_cards"], id="geo.refresh_wallet_cards"
        )
        assert forget_retired_jobs(scheduler, services) == ["geo.refresh_wallet_cards"]
        with db.database.transaction() as session:
            stored = set(session.scalars(text("SELECT id FROM apscheduler_jobs")))
        assert stored == {job.name for job in services.jobs}
        assert all(job.coalesce and job.max_instances == 1 and job.misfire_grace_time for job in scheduler.get_jobs())
    finally:
        scheduler.shutdown()


def test_a_job_runs_on_demand(world):
    result = world.app.test_cli_runner().invoke(args=["scheduler", "run-job", "loyalty.expire_points"])
    assert result.exit_code == 0 and "loyalty.expire_points: 0" in result.output
