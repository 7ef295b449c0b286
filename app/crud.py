"""The few lines every admin CRUD endpoint shares."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.errors import NotFound

T = TypeVar("T")


def get_or_404(session: Session, model: type[T], object_id: int, *, program_id: int | None = None) -> T:
    found = session.get(model, object_id)
    if found is None or (program_id is not None and getattr(found, "program_id", program_id) != program_id):
        raise NotFound(f"There is no {model.__tablename__.rstrip('s').replace('_', ' ')} {object_id}.")
    return found


def apply_changes(target: object, changes: BaseModel) -> None:
    """Copy the fields the client actually sent (PATCH semantics: absent means unchanged)."""
    for name, value in changes.model_dump(exclude_unset=True).items():
        setattr(target, name, value)
