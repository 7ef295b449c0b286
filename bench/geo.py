"""Geofence matching at scale: the SQL prefilter + geodesic check against a brute-force scan.

Creates a throwaway database (SQLite in a temporary directory, or a fresh PostgreSQL database
with --server), migrates it, seeds the demo program, adds --stores stores scattered over
Western Europe with one offer each (radius 100-500 m), then sends --pings positions through
the service's matcher (`matching_offers`): half near a store (0-600 m away, so some inside and
some outside the fence), half anywhere in the area. The same run times a brute-force scan
(geopy's geodesic distance to every store) over a sample of the same pings (--brute-pings:
at ~10,000 geodesics per ping, all 100,000 would take hours), checks both find the same
offers, and prints p50/p99 and the ratio.

    .venv/bin/python bench/geo.py [--stores 10000] [--pings 100000] [--brute-pings 100]
        [--server postgresql+psycopg://postgres@127.0.0.1:5432/test] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geopy.distance import geodesic
from sqlalchemy import create_engine, select, text

from app.db import Database
from app.db_cli import upgrade
from app.demo.seed import seed_demo
from app.geo import fences, service
from app.geo.config import GeoSettings
from app.geo.models import GeoOffer
from app.geo.schemas import GeoOfferCreate
from app.loyalty.models import Program, Store

AREA = {"lat": (42.0, 52.0), "lon": (-5.0, 10.0)}
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = GeoSettings()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


Fence = tuple[int, float, float, float]


def seed(database: Database, count: int, rng: random.Random) -> tuple[int, list[Fence]]:
    """Stores with one offer each; the program id, and (offer id, lat, lon, radius) per fence."""
    with database.transaction() as session:
        seed_demo(session=session, password_cost=15)
        program = session.scalar(select(Program))
        stores = [
            Store(
                program_id=program.id,
                name=f"Store {i}",
                latitude=rng.uniform(*AREA["lat"]),
                longitude=rng.uniform(*AREA["lon"]),
                timezone="Europe/Paris",
            )
            for i in range(count)
        ]
        session.add_all(stores)
        session.flush()
        fenced = []
        for store in stores:
            body = GeoOfferCreate(title=f"Offer {store.id}", store_ids=[store.id], radius_m=rng.uniform(100, 500))
            offer = service.save_offer(session=session, program_id=program.id, body=body, settings=SETTINGS)
            fenced.append((offer.id, store.latitude, store.longitude, offer.radius_m))
        return program.id, fenced


def pings(count: int, fenced: list, rng: random.Random) -> list[tuple[float, float, float]]:
    out = []
    for i in range(count):
        accuracy = rng.choice([5.0, 10.0, 20.0, 65.0])
        if i % 2:
            out.append((rng.uniform(*AREA["lat"]), rng.uniform(*AREA["lon"]), accuracy))
            continue
        _, lat, lon, _ = rng.choice(fenced)
        moved = geodesic(meters=rng.uniform(0, 600)).destination((lat, lon), rng.uniform(0, 360))
        out.append((moved.latitude, moved.longitude, accuracy))
    return out


def indexed(session, program_id: int, point) -> tuple[float, set[int]]:
    started = time.perf_counter()
    found = service.matching_offers(
        session=session,
        program_id=program_id,
        latitude=point[0],
        longitude=point[1],
        accuracy_m=point[2],
        now=NOW,
        settings=SETTINGS,
    )
    return time.perf_counter() - started, {match.offer.id for match in found}


def brute_force(fenced: list, point) -> tuple[float, set[int]]:
    started = time.perf_counter()
    found = {
        offer_id
        for offer_id, lat, lon, radius in fenced
        if fences.reaches(centre=(lat, lon), radius_m=radius, point=point[:2], accuracy_m=point[2])
    }
    return time.perf_counter() - started, found


def run(database: Database, args) -> dict:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    program_id, fenced = seed(database, args.stores, rng)
    seeded = time.perf_counter() - started
    positions = pings(args.pings, fenced, rng)
    with database.transaction() as session:
        session.scalars(select(GeoOffer)).all()  # the matcher reads offers through the identity map
        timed = [indexed(session, program_id, point) for point in positions]
        sample = positions[: args.brute_pings]
        brute = [brute_force(fenced, point) for point in sample]
    mismatches = sum(1 for (_, fast), (_, slow) in zip(timed, brute, strict=False) if fast != slow)
    fast_ms = [t * 1000 for t, _ in timed]
    slow_ms = [t * 1000 for t, _ in brute]
    return {
        "database": database.engine.dialect.name,
        "stores": args.stores,
        "pings": args.pings,
        "brute_force_pings": len(sample),
        "seed_seconds": round(seeded, 1),
        "pings_matching_an_offer": sum(1 for _, found in timed if found),
        "indexed_ms": {
            "p50": round(percentile(fast_ms, 50), 3),
            "p99": round(percentile(fast_ms, 99), 3),
            "mean": round(statistics.fmean(fast_ms), 3),
        },
        "brute_force_ms": {
            "p50": round(percentile(slow_ms, 50), 1),
            "p99": round(percentile(slow_ms, 99), 1),
            "mean": round(statistics.fmean(slow_ms), 1),
        },
        "ratio_p50": round(percentile(slow_ms, 50) / percentile(fast_ms, 50), 1),
        "ratio_p99": round(percentile(slow_ms, 99) / percentile(fast_ms, 99), 1),
        "mismatches_in_sample": mismatches,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--pings", type=int, default=100_000)
    parser.add_argument("--brute-pings", type=int, default=100)
    parser.add_argument("--server", help="a PostgreSQL URL; a throwaway database is created beside it")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as directory:
        url, cleanup = _database_url(args.server, directory)
        try:
            upgrade(url)
            database = Database(url)
            result = run(database, args)
            database.engine.dispose()
        finally:
            cleanup()
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0 if result["mismatches_in_sample"] == 0 else 1


def _database_url(server: str | None, directory: str):
    if not server:
        return f"sqlite:///{directory}/geo-bench.db", lambda: None
    name = f"pointcard_geo_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return server.rsplit("/", 1)[0] + f"/{name}", drop


if __name__ == "__main__":
    sys.exit(main())
