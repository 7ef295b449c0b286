"""Who may call: the four roles and the principal a verified token names.

Core: every domain may import this (views declare their roles with it); issuing and verifying
the tokens themselves is the auth package's business.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    admin = "admin"
    marketer = "marketer"
    cashier = "cashier"
    customer = "customer"


STAFF_ROLES = frozenset({Role.admin, Role.marketer, Role.cashier})
ADMIN = frozenset({Role.admin})
STAFF_WRITERS = frozenset({Role.admin, Role.marketer})
ALL_STAFF = STAFF_ROLES
CUSTOMER = frozenset({Role.customer})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a staff user (with a store, for cashiers) or a customer."""

    role: Role
    user_id: int | None = None
    store_id: int | None = None
    customer_id: int | None = None

    @property
    def subject(self) -> str:
        if self.role is Role.customer:
            return f"customer:{self.customer_id}"
        return f"user:{self.user_id}"
