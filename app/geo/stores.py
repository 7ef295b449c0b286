"""Stores' places: created and moved (their offers' fences follow), opening hours, bulk import.

The Store row belongs to loyalty (purchases and cashiers point at it); where it is and when it
is open is this package's business.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from pydantic import ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crud import apply_changes
from app.errors import Problem
from app.geo import hours
from app.geo.config import GeoSettings
from app.geo.geocoding import Geocoder
from app.geo.schemas import StoreCreate, StoreUpdate
from app.geo.service import store_fences_changed
from app.loyalty.models import Store

COLUMNS = ("name", "address", "latitude", "longitude", "timezone", "opening_hours")
# What a fence is made of: changing any of these rebuilds the fences of the store's offers.
_FENCE_FIELDS = ("latitude", "longitude", "timezone", "active")


class StoreRow(StoreCreate):
    """A CSV line: blanks are absent values, and hours come in the shorthand (see hours.py)."""

    @field_validator("latitude", "longitude", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("opening_hours", mode="before")
    @classmethod
    def _shorthand(cls, value):
        return hours.parse_shorthand(value) if isinstance(value, str) else value


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


def import_stores(
    *, session: Session, program_id: int, rows: Iterable[tuple[int, dict]], geocoder: Geocoder | None
) -> ImportReport:
    """Add every good row; a bad row is reported with its line and the others are kept."""
    report = ImportReport()
    for line, raw in rows:
        try:
            with session.begin_nested():  # a failed row leaves nothing behind
                report.created.append(_add(session, program_id, raw, geocoder).id)
        except ValidationError as exc:
            report.errors.append(
                (line, "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors()))
            )
        except Problem as exc:
            report.errors.append((line, exc.detail))
    return report


def _add(session: Session, program_id: int, raw: dict, geocoder: Geocoder | None) -> Store:
    return create_store(session=session, program_id=program_id, body=StoreRow.model_validate(raw), geocoder=geocoder)


def list_stores(*, session: Session, program_id: int) -> list[Store]:
    return list(session.scalars(select(Store).where(Store.program_id == program_id).order_by(Store.id)))


def create_store(*, session: Session, program_id: int, body: StoreCreate, geocoder: Geocoder | None) -> Store:
    """A new store where its coordinates say, else where the geocoder finds its address."""
    latitude, longitude = body.latitude, body.longitude
    if latitude is None or longitude is None:
        latitude, longitude = _locate(body.address, geocoder)
    store = Store(
        program_id=program_id,
        name=body.name,
        address=body.address,
        latitude=latitude,
        longitude=longitude,
        timezone=body.timezone,
        opening_hours=body.opening_hours,
    )
    session.add(store)
    session.flush()
    return store


def update_store(*, session: Session, store: Store, body: StoreUpdate, settings: GeoSettings) -> Store:
    """Change a store; if it moved, changed zone, closed or reopened, its offers' fences follow."""
    moved = any(name in body.model_fields_set and getattr(body, name) != getattr(store, name) for name in _FENCE_FIELDS)
    apply_changes(store, body)
    session.flush()
    if moved:
        store_fences_changed(session=session, store=store, settings=settings)
    return store


class CoordinatesRequired(Problem):
    status, slug, title = 422, "coordinates-required", "Coordinates required"


def _locate(address: str, geocoder: Geocoder | None) -> tuple[float, float]:
    if geocoder is None:
        raise CoordinatesRequired(
            "latitude and longitude are required: no geocoder is configured "
            "(POINTCARD_GEO__GEOCODER=nominatim turns one on)."
        )
    if not address.strip():
        raise CoordinatesRequired("give latitude and longitude, or an address to geocode.")
    return geocoder.locate(address)
