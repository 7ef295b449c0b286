"""Benchmark the Google Wallet hot paths on this machine and print figures.

    .venv/bin/python bench/google_wallet.py [--cards N] [--seconds S] [--json]

1. object payloads built per second: the card read from the database (balance, tier, next
   reward) and rendered through the program's Jinja2 template, as the sender does per patch;
2. save-link JWTs signed per second: RS256 with a 2048-bit service-account key, as every tap
   on "Add to Google Wallet" does;
3. save links served per second: GET /wallet/google/<card> through the app (test client),
   database and signing included, for objects already in Google (the skinny link) and not
   (the object rides in the link).

Runs on a throwaway SQLite database with throwaway credentials (REST calls only logged),
in one process and thread; nothing outside a temporary directory is touched.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rate(call: Callable[[int], object], seconds: float) -> tuple[float, int]:
    """Calls per second of call(i) over about `seconds` (after a short warm-up)."""
    for i in range(20):
        call(i)
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(20):
            call(done)
            done += 1
    return done / elapsed, done


def _setup(directory: Path, cards: int):
    from sqlalchemy import select

    from app import create_app
    from app.config import Settings
    from app.db_cli import upgrade
    from app.demo.seed import seed_demo
    from app.loyalty.models import Card, Program
    from app.loyalty.service import enroll_customer
    from app.wallet.google.dev import create_dev_credentials

    url = f"sqlite:///{directory / 'bench.db'}"
    upgrade(url)
    settings = Settings(
        env="test",
        database_url=url,
        secret_key="bench-" + "x" * 40,
        rate_limits_enabled=False,
        google={"certs_dir": directory / "google"},
        apple={"certs_dir": directory / "apple"},
    )
    create_dev_credentials(settings)
    app = create_app(settings)
    database = app.extensions["pointcard"].database
    with database.transaction() as session:
        seed_demo(session=session, password_cost=15)
        program = session.scalar(select(Program))
        for n in range(cards):
            enroll_customer(session=session, program=program, first_name=f"Bench{n}", last_name="Customer")
    with database.transaction() as session:
        tokens = [card.access_token for card in session.scalars(select(Card).order_by(Card.id))]
    return app, tokens


def run(cards: int, seconds: float) -> dict:
    logging.disable(logging.WARNING)  # the console API logs every call it pretends to make
    from sqlalchemy import select, update

    from app.db import utcnow
    from app.loyalty.models import Card
    from app.wallet.google import save_link, service
    from app.wallet.google.models import GoogleWalletObject

    with tempfile.TemporaryDirectory(prefix="pointcard-bench-") as tmp:
        app, tokens = _setup(Path(tmp), cards)
        wallet, database = app.extensions["pointcard"].google_wallet, app.extensions["pointcard"].database
        figures: dict = {"cards": cards}
        with database.transaction() as session:
            all_cards = session.scalars(select(Card).order_by(Card.id)).all()

            def build(i: int) -> dict:
                return service.object_payload(session=session, card=all_cards[i % cards], wallet=wallet)

            figures["object_payloads_per_s"], _ = _rate(build, seconds)
            payload = save_link.fat_payload(build(0))
        now = utcnow()

        def sign(i: int) -> str:
            return save_link.sign(account=wallet.account, origins=wallet.origins, payload=payload, now=now)

        figures["save_jwts_per_s"], _ = _rate(sign, seconds)
        figures["save_jwt_chars"] = len(sign(0))
        client = app.test_client()

        def serve(i: int) -> None:
            response = client.get(f"/wallet/google/{tokens[i % cards]}")
            assert response.status_code == 302, response.get_data(as_text=True)

        figures["save_links_fat_per_s"], _ = _rate(serve, seconds)
        with database.transaction() as session:
            session.execute(update(GoogleWalletObject).values(inserted_in_google=True))
        figures["save_links_skinny_per_s"], _ = _rate(serve, seconds)
        logging.disable(logging.NOTSET)
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--cards", type=int, default=200, help="cards enrolled (payloads cycle through them)")
    parser.add_argument("--seconds", type=float, default=2.0, help="time measured per figure")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(args.cards, args.seconds)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    rows = [
        ("object payloads built (DB read + template)", f"{figures['object_payloads_per_s']:,.0f} /s"),
        ("save-link JWTs signed (RS256, 2048-bit)", f"{figures['save_jwts_per_s']:,.0f} /s"),
        ("save-link JWT length", f"{figures['save_jwt_chars']} chars (limit 1,800)"),
        ("save links served, object in the link", f"{figures['save_links_fat_per_s']:,.0f} /s"),
        ("save links served, skinny (object in Google)", f"{figures['save_links_skinny_per_s']:,.0f} /s"),
    ]
    width = max(len(label) for label, _ in rows)
    print("\nPointcard Google Wallet benchmark (one process, one thread, SQLite)")
    print("-" * (width + 24))
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
