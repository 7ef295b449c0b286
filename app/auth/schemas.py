from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from app.roles import Role


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Not EmailStr: a login only has to match a stored address, not be deliverable.
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class StaffUserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: Role
    store_id: int | None
    active: bool


class StaffUserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=10, max_length=1024)
    role: Literal[Role.admin, Role.marketer, Role.cashier]
    store_id: int | None = None


class StaffUserUpdate(BaseModel):
    """PATCH: only the fields sent change. A cashier needs a store; other roles have none."""

    model_config = ConfigDict(extra="forbid")

    role: Literal[Role.admin, Role.marketer, Role.cashier] | None = None
    store_id: int | None = None
    active: bool | None = None
