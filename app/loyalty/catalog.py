"""The program's catalogue: its rewards, tiers and promotions. The three follow the same rules,
so one set of functions serves them: rows belong to a program, references to stores and tiers
must stay inside it, history keeps what it points at (rewards and promotions retire; a tier is
deleted only while nothing uses it)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.crud import apply_changes, get_or_404
from app.errors import Conflict, Unprocessable
from app.loyalty.models import Promotion, Reward, Store, Tier

Entry = TypeVar("Entry", Reward, Tier, Promotion)
_LABEL: dict[type, str] = {Reward: "reward", Tier: "tier", Promotion: "promotion"}


def list_entries(*, session: Session, model: type[Entry], program_id: int) -> list[Entry]:
    return list(session.scalars(select(model).where(model.program_id == program_id).order_by(model.id)))


def get_entry(*, session: Session, model: type[Entry], program_id: int, entry_id: int) -> Entry:
    return get_or_404(session, model, entry_id, program_id=program_id)


def create_entry(*, session: Session, model: type[Entry], program_id: int, values: BaseModel) -> Entry:
    fields = values.model_dump()
    _check_references(session, program_id, fields)
    entry = model(program_id=program_id, **fields)
    session.add(entry)
    _flush_unique(session, model)
    return entry


def update_entry(*, session: Session, entry: Entry, changes: BaseModel) -> Entry:
    _check_references(session, entry.program_id, changes.model_dump(exclude_unset=True))
    apply_changes(entry, changes)
    _flush_unique(session, type(entry))
    return entry


def remove_entry(*, session: Session, entry: Entry) -> None:
    """Rewards and promotions retire (redemptions and purchases point at them); a tier goes only
    while no customer or reward points at it."""
    if isinstance(entry, Reward | Promotion):
        entry.active = False
        return
    try:
        with session.begin_nested():
            session.delete(entry)
    except IntegrityError as exc:
        raise Conflict("It is still in use (customers or rewards point at it).") from exc


def _flush_unique(session: Session, model: type) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # the one unique rule of the catalogue: a tier's threshold
        raise Conflict(f"Another {_LABEL[model]} of the program already has these values.") from exc


def _check_references(session: Session, program_id: int, fields: dict[str, Any]) -> None:
    store_id, tier_id = fields.get("store_id"), fields.get("tier_id")
    _check_belongs(session.get(Store, store_id) if store_id is not None else None, store_id, program_id, "store_id")
    _check_belongs(session.get(Tier, tier_id) if tier_id is not None else None, tier_id, program_id, "tier_id")


def _check_belongs(found: Store | Tier | None, object_id: int | None, program_id: int, field: str) -> None:
    if object_id is not None and (found is None or found.program_id != program_id):
        raise Unprocessable(f"There is no {field.removesuffix('_id')} {object_id} in this program.", field=field)
