"""Bulk store import: each CSV row becomes a store, geocoded when it has no coordinates."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from pydantic import Field, ValidationError, field_validator
from sqlalchemy.orm import Session

from app.errors import Problem
from app.geo.geocoding import Geocoder
from app.loyalty.models import Store
from app.schemas import Input, Latitude, Longitude, Name, TimeZone

COLUMNS = ("name", "address", "latitude", "longitude", "timezone")


class StoreRow(Input):
    name: Name
    address: str = Field(default="", max_length=300)
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    timezone: TimeZone

    @field_validator("latitude", "longitude", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value


@dataclass
class ImportReport:
    created: list[int] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


def read_rows(stream: TextIO) -> Iterator[tuple[int, dict]]:
    """(line number, row) pairs; the header is line 1."""
    reader = csv.DictReader(stream)
    missing = {"name", "timezone"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"the CSV header lacks {sorted(missing)}; expected columns: {', '.join(COLUMNS)}")
    for row in reader:
        yield reader.line_num, {key: value for key, value in row.items() if key in COLUMNS and value is not None}


def import_stores(*, session: Session, program_id: int, rows: Iterable[tuple[int, dict]],
                  geocoder: Geocoder | None) -> ImportReport:
    """Add every good row; a bad row is reported with its line and the others are kept."""
    report = ImportReport()
    for line, raw in rows:
        try:
            with session.begin_nested():  # a failed row leaves nothing behind
                report.created.append(_add(session, program_id, raw, geocoder).id)
        except ValidationError as exc:
            report.errors.append((line, "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}"
                                                  for e in exc.errors())))
        except Problem as exc:
            report.errors.append((line, exc.detail))
    return report


def _add(session: Session, program_id: int, raw: dict, geocoder: Geocoder | None) -> Store:
    row = StoreRow.model_validate(raw)
    latitude, longitude = row.latitude, row.longitude
    if latitude is None or longitude is None:
        latitude, longitude = _locate(row, geocoder)
    store = Store(program_id=program_id, name=row.name, address=row.address, latitude=latitude,
                  longitude=longitude, timezone=row.timezone)
    session.add(store)
    session.flush()
    return store


class CoordinatesRequired(Problem):
    status, slug, title = 422, "coordinates-required", "Coordinates required"


def _locate(row: StoreRow, geocoder: Geocoder | None) -> tuple[float, float]:
    if geocoder is None:
        raise CoordinatesRequired("latitude and longitude are required: no geocoder is configured "
                                  "(POINTCARD_GEO__GEOCODER=nominatim turns one on).")
    if not row.address.strip():
        raise CoordinatesRequired("give latitude and longitude, or an address to geocode.")
    return geocoder.locate(row.address)
