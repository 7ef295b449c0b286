"""Test data and a client that acts as any role. Tokens are minted directly (no login cost)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from flask import Flask
from sqlalchemy import select

from app.auth.models import StaffUser
from app.db import Database
from app.demo.seed import seed_demo
from app.loyalty.models import Customer, Program, Reward, Store, Tier
from app.roles import Principal, Role
from app.tokens import issue_token


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
            passwords = seed_demo(session=session, password_cost=app.extensions["pointcard"].settings.password_hash_cost)
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


def money(value: str) -> Decimal:
    return Decimal(value)
