"""Many tills at once: balances never go negative and one key never earns twice.

Each thread is its own till with its own connection; PostgreSQL serializes them with a row
lock on the customer, SQLite with its write lock. Both backends are exercised.
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app import create_app
from app.loyalty.ledger import ledger_balance
from app.loyalty.models import Purchase, Redemption
from app.roles import Role
from tests.support import World, make_settings

TILLS = 20


@pytest.fixture(params=["sqlite-or-pass-db", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_world(request):
    db = request.getfixturevalue("db" if request.param == "sqlite-or-pass-db" else "pg_db")
    app = create_app(make_settings(db.url, max_purchases_per_card_per_hour=1000), database=db.database)
    return World.seed(app, db.database)


def _all_at_once(world, calls):
    """Run each call on its own till (thread + test client), released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        client = world.app.test_client()
        barrier.wait()
        return call(client)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_redemptions_never_drive_the_balance_negative(shared_world):
    world = shared_world
    card = world.enroll()
    assert world.purchase(card["barcode"], "100.00").status_code == 201  # 1,050 points: three coffees
    reward_id = world.reward_ids["Free drip coffee"]
    headers = [world.headers(Role.cashier, str(uuid.uuid4())) for _ in range(TILLS)]

    responses = _all_at_once(
        world,
        [
            (
                lambda client, h=h: client.post(
                    "/api/v1/pos/redemptions", json={"barcode": card["barcode"], "reward_id": reward_id}, headers=h
                )
            )
            for h in headers
        ],
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * (TILLS - 3)
    assert world.balance(card["customer_id"]) == 150
    with world.database.transaction() as session:
        assert ledger_balance(session=session, customer_id=card["customer_id"]) == 150
        assert session.scalar(select(func.count(Redemption.id))) == 3


def test_the_same_key_sent_by_many_tills_at_once_earns_once(shared_world):
    world = shared_world
    card = world.enroll()
    headers = world.headers(Role.cashier, "one-sale")
    responses = _all_at_once(
        world,
        [
            (
                lambda client: client.post(
                    "/api/v1/pos/purchases",
                    json={"barcode": card["barcode"], "amount": "10.00", "currency": "USD"},
                    headers=headers,
                )
            )
            for _ in range(TILLS)
        ],
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.get_json()["transaction_id"] for r in responses}) == 1
    assert world.balance(card["customer_id"]) == 150
    with world.database.transaction() as session:
        assert session.scalar(select(func.count(Purchase.id))) == 1
