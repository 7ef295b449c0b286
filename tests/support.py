"""What many tests share and that is not a fixture: the settings a test app runs with, the skip
that CI turns into a failure, the demo program with a client that acts as any role (`World`,
tokens minted directly: no login cost), and draining the outbox. Fixtures are in conftest.py
files; local servers that play outside services are in tests/fakes/."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from app.auth.models import StaffUser
from app.config import Settings
from app.db import Database
from app.demo.seed import seed_demo
from app.loyalty.models import Customer, Program, Reward, Store, Tier
from app.roles import Principal, Role
from app.tokens import issue_token

ROOT = Path(__file__).resolve().parent.parent  # the repository
STRICT = os.environ.get("POINTCARD_TEST_STRICT") == "1"
# Offers are marketing: sent within quiet hours only. Tests must not depend on the hour they run.
ANY_HOUR = {"quiet_hours": {"start": "00:00", "end": "23:59:59.999999"}}
# Enrolment fields of a customer who agreed to offers on their phone (the outbox wants the text).
PUSH_OPT_IN = {"consents": {"push": True}, "consent_text": "Send me offers on my phone, at most weekly."}


def require(condition: bool, reason: str) -> None:
    """Skip with the reason on a bare machine; fail in CI (POINTCARD_TEST_STRICT=1), where
    everything must run."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"required in CI (POINTCARD_TEST_STRICT=1): {reason}", pytrace=False)
    pytest.skip(reason)


def make_settings(url: str, **overrides) -> Settings:
    values = {
        "env": "test",
        "database_url": url,
        "secret_key": "test-signing-secret-" + "0123456789abcdef" * 4,
        "rate_limits_enabled": False,
        "public_base_url": "http://card.test",
        "password_hash_cost": 10,  # the cheapest scrypt Settings allows: a test's logins cost ~1 ms
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class World:
    app: Flask
    database: Database
    passwords: dict[str, str]
    program_id: int
    store_ids: list[int]
    tier_ids: dict[str, int]
    reward_ids: dict[str, int]
    staff: dict[Role, StaffUser]
    client: object = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    @classmethod
    def seed(cls, app: Flask, database: Database) -> World:
        with database.transaction() as session:
            cost = app.extensions["pointcard"].settings.password_hash_cost
            passwords = seed_demo(session=session, password_cost=cost)
            program = session.scalar(select(Program))
            staff = {user.role: user for user in session.scalars(select(StaffUser))}
            return cls(
                app=app,
                database=database,
                passwords=passwords,
                program_id=program.id,
                store_ids=[s.id for s in session.scalars(select(Store).order_by(Store.id))],
                tier_ids={t.name: t.id for t in session.scalars(select(Tier))},
                reward_ids={r.name: r.id for r in session.scalars(select(Reward))},
                staff=staff,
            )

    # --- tokens and headers ---

    def token(
        self,
        role: Role,
        *,
        customer_id: int | None = None,
        store_id: int | None = None,
        lifetime: timedelta = timedelta(minutes=5),
        **claims_overrides,
    ) -> str:
        settings = self.app.extensions["pointcard"].settings
        if role is Role.customer:
            principal = Principal(role=role, customer_id=customer_id)
        else:
            user = self.staff[role]
            principal = Principal(
                role=role, user_id=user.id, store_id=store_id if store_id is not None else user.store_id
            )
        return issue_token(
            principal,
            secret=settings.signing_secret(),
            issuer=settings.jwt_issuer,
            audience=claims_overrides.get("audience", settings.jwt_audience),
            lifetime=lifetime,
        )

    def headers(self, role: Role | None, idempotency_key: str | None = None, **kwargs) -> dict[str, str]:
        headers = {}
        if role is not None:
            headers["Authorization"] = f"Bearer {self.token(role, **kwargs)}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    # --- common steps ---

    def enroll(self, name: str = "Ada Lovelace", **fields) -> dict:
        if any(fields.get("consents", {}).values()):
            fields.setdefault("consent_text", "Yes, send me offers. Reply STOP to opt out.")
        response = self.client.post("/api/v1/enroll", json={"name": name, **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def purchase(self, barcode: str, amount: str, *, key: str | None = None, role: Role = Role.cashier, **fields):
        return self.client.post(
            "/api/v1/pos/purchases",
            json={"barcode": barcode, "amount": amount, "currency": "USD", **fields},
            headers=self.headers(role, key or str(uuid.uuid4())),
        )

    def redeem(self, barcode: str, reward: str, *, key: str | None = None):
        return self.client.post(
            "/api/v1/pos/redemptions",
            json={"barcode": barcode, "reward_id": self.reward_ids[reward]},
            headers=self.headers(Role.cashier, key or str(uuid.uuid4())),
        )

    def scan(self, barcode: str):
        return self.client.post("/api/v1/pos/scan", json={"barcode": barcode}, headers=self.headers(Role.cashier))

    def customer(self, customer_id: int) -> Customer:
        with self.database.transaction() as session:
            customer = session.get(Customer, customer_id)
            session.expunge(customer)
            return customer

    def balance(self, customer_id: int) -> int:
        return self.customer(customer_id).points_balance


def drain(app) -> int:
    """Run the outbox worker until nothing is due; how many messages it handled."""
    from app.messaging.outbox import drain_once

    senders, handled = app.extensions["pointcard"].senders(), 0
    settings = app.extensions["pointcard"].settings.messaging
    while count := drain_once(database=app.extensions["pointcard"].database, senders=senders, settings=settings):
        handled += count
    return handled


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (the probe that held it is closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
