from __future__ import annotations

import signal
import threading

import click
from flask.cli import AppGroup

from app.extensions import current_services

scheduler_cli = AppGroup("scheduler", help="The job scheduler.")


@scheduler_cli.command("list")
def list_jobs() -> None:
    """Print every job with its trigger."""
    services = current_services()
    for job in services.jobs:
        args = " ".join(f"{k}={v}" for k, v in job.trigger_kwargs(services.settings).items())
        click.echo(f"{job.name:32} {job.trigger} {args} (misfire grace {job.timeout_minutes} min)")


@scheduler_cli.command("run")
def run() -> None:
    """Run the scheduler until stopped (one active per deployment; others wait as standby)."""
    from jobs import run_forever  # APScheduler loads only in the scheduler process

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if not run_forever(current_services(), stop):
        raise SystemExit(1)  # lost the lock: the supervisor restarts this process as a standby


@scheduler_cli.command("run-job")
@click.argument("name")
def run_job_now(name: str) -> None:
    """Run one job now, in this process."""
    services = current_services()
    job = next((job for job in services.jobs if job.name == name), None)
    if job is None:
        raise click.ClickException(f"no job named {name}; see 'flask scheduler list'")
    click.echo(f"{name}: {job.run(services)}")
