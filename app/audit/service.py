"""Writing audit records: every row a staff request changes, and explicit actions such as exports.

A staff request runs inside `audited_request`, which puts the actor on the session. After each
flush, `_record_flushed_changes` turns the flushed inserts, updates and deletes into audit rows
written on the same connection, so they commit or roll back with the change they describe.
"""

from __future__ import annotations

import enum
import getpass
import re
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from flask import request
from sqlalchemy import LargeBinary, insert, inspect
from sqlalchemy.orm import Session

from app.audit.config import AuditSettings
from app.audit.models import AuditRecord
from app.db import Database, utcnow
from app.roles import STAFF_ROLES, Principal

ACTOR_KEY = "audit_actor"
REDACTED = "[redacted]"
# Secrets and personal data never enter a log nobody may delete from: the record says the
# field changed, not what it holds. Matched against column names.
_REDACTED_NAME = re.compile(
    r"password|token|secret|cipher|hash|nonce|p256dh|auth|_index$|email|phone|first_name|last_name"
    r"|ip_address|user_agent|^endpoint$|^data$|^code$"
)


@dataclass(frozen=True)
class Actor:
    """Who acts and from where; copied into every record the request writes."""

    actor_id: int | None
    actor_email: str | None
    actor_role: str | None
    ip_address: str | None
    user_agent: str | None
    method: str | None
    path: str | None
    endpoint: str | None
    request_id: str
    settings: AuditSettings

    def columns(self) -> dict[str, Any]:
        values = asdict(self)
        del values["settings"]
        return values


def actor_from_request(*, principal: Principal, actor_email: str | None, settings: AuditSettings) -> Actor:
    return Actor(
        actor_id=principal.user_id,
        actor_email=actor_email,
        actor_role=principal.role.value,
        ip_address=request.remote_addr,
        user_agent=(request.user_agent.string or None) and request.user_agent.string[:255],
        method=request.method,
        path=request.path[:255],
        endpoint=request.endpoint,
        request_id=str(uuid.uuid4()),
        settings=settings,
    )


def audited_request(
    *, session: Session, principal: Principal | None, actor_email: str | None, settings: AuditSettings
) -> AbstractContextManager:
    """The audit scope of one API request: staff requests are recorded, others are not.
    `actor_email`: the staff account's, as the request's principal check found it."""
    if principal is None or principal.role not in STAFF_ROLES or request.endpoint in settings.skip_endpoints:
        return nullcontext()
    return _scope(session, actor_from_request(principal=principal, actor_email=actor_email, settings=settings))


@contextmanager
def _scope(session: Session, actor: Actor) -> Iterator[Actor]:
    session.info[ACTOR_KEY] = actor
    try:
        entity_type = actor.settings.exports.get(actor.endpoint or "")
        if entity_type is not None:
            record_action(
                session=session,
                action=f"{entity_type}.export",
                entity_type=entity_type,
                entity_id=_first_path_id(),
                details={"query": sorted(request.args.keys())},
            )
        yield actor
    finally:
        session.info.pop(ACTOR_KEY, None)


def cli_actor(*, settings: AuditSettings, command: str) -> Actor:
    """An operator at the command line: no account, so the OS user and the command say who."""
    return Actor(
        actor_id=None,
        actor_email=None,
        actor_role="cli",
        ip_address=None,
        user_agent=f"flask {command} (os user {_os_user()})"[:255],
        method=None,
        path=None,
        endpoint=command,
        request_id=str(uuid.uuid4()),
        settings=settings,
    )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


@contextmanager
def audited_transaction(database: Database, actor: Actor) -> Iterator[Session]:
    """Like Database.transaction(), with every change recorded as done by the actor."""
    with database.transaction() as session, _scope(session, actor):
        yield session
        session.flush()  # inside the scope: the commit after it then has nothing left to write


def _first_path_id() -> str | None:
    values = [value for value in (request.view_args or {}).values() if isinstance(value, int)]
    return str(values[0]) if values else None


def record_action(
    *,
    session: Session,
    action: str,
    entity_type: str,
    entity_id: str | int | None = None,
    details: dict | None = None,
    changes: dict | None = None,
) -> AuditRecord:
    """An explicit audit record (an export, a login lockout): written with the transaction."""
    actor = session.info.get(ACTOR_KEY)
    record = AuditRecord(
        at=utcnow(),
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        details=details,
        changes=changes,
        **(actor.columns() if actor else {}),
    )
    session.add(record)
    return record


# --- what a flush changed ------------------------------------------------------------------


def record_flushed_changes(session: Session, _flush_context) -> None:
    # After the statements ran but before the session forgets their history: new rows have
    # their ids, and every attribute still knows its value before the flush.
    actor: Actor | None = session.info.get(ACTOR_KEY)
    if actor is None:
        return
    rows = []
    for verb, objects in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            row = _change_row(obj, verb, actor)
            if row is not None:
                rows.append(row)
    if rows:
        session.connection().execute(insert(AuditRecord), rows)


def _change_row(obj: Any, verb: str, actor: Actor) -> dict | None:
    state = inspect(obj)
    mapper = state.mapper
    if not getattr(mapper.class_, "__audit__", True) or mapper.local_table.name in actor.settings.ignored_tables:
        return None
    changes = _changes(state, verb)
    if not changes:
        return None
    entity_type = _snake(mapper.class_.__name__)
    return {
        **actor.columns(),
        "at": utcnow(),
        "action": f"{entity_type}.{verb}",
        "entity_type": entity_type,
        "entity_id": _identity(state),
        "changes": changes,
        "details": None,
    }


def _changes(state, verb: str) -> dict[str, list]:
    changes = {}
    redact: frozenset[str] = getattr(state.mapper.class_, "__audit_redact__", frozenset())
    for attr in state.mapper.column_attrs:
        key = attr.key
        if verb == "update":
            history = state.attrs[key].history
            if not history.has_changes():
                continue
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if before == after:
                continue
        elif key not in state.dict:
            continue  # a server-side default nobody set: nothing to say about it
        else:
            value = state.dict[key]
            before, after = (None, value) if verb == "create" else (value, None)
        hidden = key in redact or _is_secret(attr)
        changes[key] = [_show(before, hidden), _show(after, hidden)]
    return changes


def _is_secret(attr) -> bool:
    column = attr.columns[0]
    kind = type(column.type)
    return bool(_REDACTED_NAME.search(attr.key)) or isinstance(column.type, LargeBinary) or "Encrypted" in kind.__name__


def _show(value: Any, hidden: bool) -> Any:
    if value is None:
        return None
    if hidden:
        return REDACTED
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _identity(state) -> str | None:
    mapper = state.mapper
    values = [state.dict.get(mapper.get_property_by_column(column).key) for column in mapper.primary_key]
    if all(value is None for value in values) and state.identity:
        values = list(state.identity)
    return "/".join(str(value) for value in values) if values else None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
