from __future__ import annotations

import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

scheduler_cli = AppGroup("scheduler", help="The job scheduler.")


@scheduler_cli.command("list")
def list_jobs() -> None:
    """Print every job with its trigger."""
    from jobs import ALL_JOBS

    for job in ALL_JOBS:
        args = " ".join(f"{k}={v}" for k, v in job.trigger_args.items())
        click.echo(f"{job.name:32} {job.trigger} {args} (misfire grace {job.timeout_minutes} min)")


@scheduler_cli.command("run")
def run() -> None:
    """Run the scheduler until stopped (one active per deployment; others wait as standby)."""
    from jobs import run_forever

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    database = current_app.extensions["database"]
    if not run_forever(database, stop):
        raise SystemExit(1)  # lost the lock: the supervisor restarts this process as a standby


@scheduler_cli.command("run-job")
@click.argument("name")
def run_job_now(name: str) -> None:
    """Run one job now, in this process."""
    from jobs import ALL_JOBS

    job = next((job for job in ALL_JOBS if job.name == name), None)
    if job is None:
        raise click.ClickException(f"no job named {name}; see 'flask scheduler list'")
    click.echo(f"{name}: {job.run(current_app.extensions['database'])}")
