"""The few lines every admin CRUD endpoint shares."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from app.errors import NotFound, Unprocessable

T = TypeVar("T")


def get_or_404(session: Session, model: type[T], object_id: int, *, program_id: int | None = None) -> T:
    found = session.get(model, object_id)
    if found is None or (program_id is not None and getattr(found, "program_id", program_id) != program_id):
        name = inspect(model).local_table.name
        raise NotFound(f"There is no {name.rstrip('s').replace('_', ' ')} {object_id}.")
    return found


def apply_changes(target: object, changes: BaseModel) -> None:
    """Copy the fields the client actually sent (PATCH semantics: absent means unchanged)."""
    values = changes.model_dump(exclude_unset=True)
    reject_nulls(target, values)
    for name, value in values.items():
        setattr(target, name, value)


def reject_nulls(target: object, values: dict) -> None:
    """A PATCH's null for a column that must have a value is the client's mistake (422), not a 500."""
    columns = inspect(type(target)).columns
    for name, value in values.items():
        if value is None and name in columns and not columns[name].nullable:
            raise Unprocessable(f"{name} cannot be null; leave it out to keep its value.", field=name)
