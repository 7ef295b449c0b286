from __future__ import annotations

import csv
from datetime import date

import click
from flask.cli import AppGroup

from app.extensions import get_db, get_settings

campaigns_cli = AppGroup("campaigns", help="Customer scoring, campaigns and re-engagement.")

OUTPUT_COLUMNS = (
    "customer_id",
    "as_of",
    "status",
    "recency_days",
    "tenure_days",
    "visits",
    "spend",
    "r_score",
    "f_score",
    "m_score",
    "median_gap_days",
    "rhythm_days",
    "overdue_factor",
    "p_alive",
    "p_return",
)


def _read_history(path: str):
    """(customer_id, date, amount) rows; a header row is skipped, ISO dates or YYYYMMDD."""
    with open(path, newline="") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or (number == 1 and row[0].strip().lower() in ("customer_id", "customer", "id")):
                continue
            try:
                customer, day, amount = (value.strip() for value in row[:3])
                yield customer, date.fromisoformat(day if "-" in day else f"{day[:4]}-{day[4:6]}-{day[6:8]}"), amount
            except ValueError as exc:
                raise click.ClickException(f"{path}, line {number}: expected customer_id,date,amount ({exc})") from exc


def _write_scores(path: str, rows: list[dict], as_of: date) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(OUTPUT_COLUMNS)
        for row in rows:
            values = {**row, "as_of": as_of.isoformat(), "spend": f"{row['spend_cents'] / 100:.2f}"}
            writer.writerow(["" if values[c] is None else values[c] for c in OUTPUT_COLUMNS])


@campaigns_cli.command("score")
@click.option(
    "--transactions",
    type=click.Path(exists=True, dir_okay=False),
    help="Score this CSV history (customer_id,date,amount) instead of the database.",
)
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), help="Scoring date (with --transactions).")
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write the scores CSV (with --transactions).")
def score(transactions: str | None, as_of, out: str | None) -> None:
    """Score customers now (every program), or an offline history with the same code."""
    settings = get_settings().campaigns
    if transactions is None:
        from app.campaigns.jobs import score_customers

        count = score_customers(database=get_db(), settings=settings, force=True)
        click.echo(f"scored {count} program(s)")
        return
    if as_of is None or out is None:
        raise click.UsageError("--transactions needs --as-of and --out")
    from app.campaigns.scoring import ScoringRules, score_history

    rows, prepared = score_history(
        _read_history(transactions), as_of=as_of.date(), rules=ScoringRules.from_settings(settings)
    )
    _write_scores(out, rows, as_of.date())
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    model = "BG/NBD fitted" if "bgnbd" in prepared.model else f"no model ({prepared.model.get('skipped')})"
    click.echo(
        f"{len(rows)} customers scored as of {as_of.date()} -> {out}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f"; typical gap {prepared.program_gap:g} days; {model}"
    )


@campaigns_cli.command("demo-history")
@click.option("--customers", default=500, show_default=True, help="How many customers to invent.")
@click.option("--seed", default=1, show_default=True)
def demo_history(customers: int, seed: int) -> None:
    """Invent a year of visits for the demo program, then score it (so /dashboard has something to show)."""
    import random
    from datetime import timedelta

    from sqlalchemy import select

    from app.campaigns.simulate import add_histories, random_history
    from app.db import utcnow
    from app.loyalty.models import Program

    database, now = get_db(), utcnow()
    rng = random.Random(seed)
    with database.transaction() as session:
        program = session.scalar(select(Program).order_by(Program.id))
        if program is None:
            raise click.ClickException("no program yet: run 'flask demo seed' first")
        histories = [
            random_history(rng, name=f"Demo{n}", start=now - timedelta(days=365), end=now) for n in range(customers)
        ]
        add_histories(session, program_id=program.id, currency=program.currency, histories=histories)
    from app.campaigns.jobs import score_customers

    score_customers(database=database, settings=get_settings().campaigns, force=True)
    click.echo(f"{customers} customers with {sum(len(h.visits) for h in histories)} visits added and scored")


@campaigns_cli.command("tick")
def tick_now() -> None:
    """Send what is due now: campaign sends and sequence steps."""
    from app.campaigns.jobs import tick

    result = tick(database=get_db(), settings=get_settings().campaigns)
    click.echo(f"started {result['started']} send(s), worked on {result['runs']}, {result['steps']} sequence step(s)")
