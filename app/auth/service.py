from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import StaffUser
from app.auth.passwords import dummy_hash, hash_password, verify_password
from app.errors import Conflict, Unauthorized, Unprocessable
from app.roles import Principal, Role


def authenticate(*, session: Session, email: str, password: str, password_cost: int) -> StaffUser:
    user = session.scalar(select(StaffUser).where(StaffUser.email == email.lower()))
    valid = verify_password(password, user.password_hash if user else dummy_hash(password_cost))
    if user is None or not valid or not user.active:
        raise Unauthorized("The e-mail or password is wrong, or the account is disabled.")
    return user


def principal_for(user: StaffUser) -> Principal:
    return Principal(role=user.role, user_id=user.id, store_id=user.store_id)


def create_user(
    *, session: Session, email: str, password: str, role: Role, store_id: int | None = None, password_cost: int
) -> StaffUser:
    if role is Role.customer:
        raise Unprocessable("Customers are enrolled, not created as staff.", field="role")
    if role is Role.cashier and store_id is None:
        raise Unprocessable("A cashier works at a store: give its id.", field="store_id")
    if store_id is not None and not _store_exists(session, store_id):
        raise Unprocessable(f"There is no store {store_id}.", field="store_id")
    if len(password) < 10:
        raise Unprocessable("Passwords have at least 10 characters.", field="password")
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email.lower())):
        raise Conflict(f"A staff user with e-mail {email} already exists.", field="email")
    user = StaffUser(
        email=email.lower(),
        password_hash=hash_password(password, cost=password_cost),
        role=role,
        store_id=store_id if role is Role.cashier else None,
    )
    session.add(user)
    session.flush()
    return user


def update_user(*, session: Session, user: StaffUser, changes: dict) -> StaffUser:
    """Change a staff user's role, store or active flag; never leaves the service without an admin."""
    role = changes.get("role") or user.role  # null means unchanged for the role and the flag
    store_id = changes.get("store_id", user.store_id)
    if changes.get("role") and role is not Role.cashier and "store_id" not in changes:
        store_id = None  # only cashiers are bound to a store
    if role is Role.cashier and store_id is None:
        raise Unprocessable("A cashier works at a store: give its id.", field="store_id")
    if role is not Role.cashier and store_id is not None:
        raise Unprocessable("Only cashiers are bound to a store.", field="store_id")
    if store_id is not None and not _store_exists(session, store_id):
        raise Unprocessable(f"There is no store {store_id}.", field="store_id")
    active = user.active if changes.get("active") is None else changes["active"]
    if user.role is Role.admin and user.active and (role is not Role.admin or not active):
        _keep_an_admin(session, user)
    user.role, user.store_id, user.active = role, store_id, active
    session.flush()
    return user


def _keep_an_admin(session: Session, leaving: StaffUser) -> None:
    # Locking every active admin row makes two admins demoting each other at once queue here,
    # and the second sees the first's change (SQLite's IMMEDIATE transactions serialize anyway).
    admins = session.scalars(
        select(StaffUser.id)
        .where(StaffUser.role == Role.admin, StaffUser.active.is_(True))
        .order_by(StaffUser.id)
        .with_for_update()
    ).all()
    if not set(admins) - {leaving.id}:
        raise Conflict("This is the last active admin: make another admin first.", field="role")


def check_staff_active(session: Session, principal: Principal) -> str:
    """A token outlives nothing: a disabled user or a changed role or store stops it now. Returns
    the account's e-mail, which the audit records name."""
    user = session.get(StaffUser, principal.user_id)
    if user is None or not user.active or user.role is not principal.role or user.store_id != principal.store_id:
        raise Unauthorized("This staff account changed or was disabled; log in again.")
    return user.email


def _store_exists(session: Session, store_id: int) -> bool:
    # The foreign key names the stores table: following it needs no loyalty model.
    (foreign_key,) = StaffUser.__table__.c.store_id.foreign_keys
    stores = foreign_key.column.table
    return session.scalar(select(stores.c.id).where(stores.c.id == store_id)) is not None
