"""`flask geo ...`: bulk store import."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from app.extensions import get_db, get_settings
from app.geo.geocoding import geocoder_from
from app.geo.stores import import_stores, read_rows
from app.loyalty.service import get_program

geo_cli = AppGroup("geo", help="Stores' places and geofenced offers.")


@geo_cli.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
def import_cmd(csv_file) -> None:
    """Add stores from a CSV (name,address,latitude,longitude,timezone); bad rows are listed by line."""
    settings = get_settings()
    try:
        rows = list(read_rows(csv_file))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    geocoder = geocoder_from(settings.geo)
    with get_db().transaction() as session:
        program_id = get_program(session=session).id
        with click.progressbar(rows, label="Importing stores", file=sys.stderr) as bar:
            report = import_stores(session=session, program_id=program_id, rows=bar, geocoder=geocoder)
    for line, why in report.errors:
        click.echo(f"line {line}: {why}", err=True)
    click.echo(f"{len(report.created)} stores imported, {len(report.errors)} rows refused")
    if report.errors:
        raise SystemExit(1)
