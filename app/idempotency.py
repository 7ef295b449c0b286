"""Idempotency-Key handling: a retried request gets the first answer and changes nothing.

The key row is written in the same transaction as the effect it guards, so either both
exist or neither does. Two requests racing with one key meet at the unique constraint: the
loser waits for the winner's commit (PostgreSQL) or the file lock (SQLite), then replays.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import datetime

from flask import Response, request
from sqlalchemy import Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db import Base, UTCDateTime, insert_unless_exists, table_of, utcnow
from app.errors import Conflict, Problem, Unprocessable
from app.roles import Principal

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)


class MissingIdempotencyKey(Problem):
    status, slug, title = 400, "idempotency-key-missing", "Idempotency-Key required"


class RequestInProgress(Conflict):
    slug, title = "idempotency-request-in-progress", "Request still in progress"


class IdempotencyKeyReused(Unprocessable):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused with another request"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.get_data(cache=True)):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def _replay(record: IdempotencyKey, fingerprint: str) -> Response:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"The Idempotency-Key '{record.key}' was already used for a different request; "
            "use a new key for a new request."
        )
    if record.status_code is None:
        raise RequestInProgress("A request with this Idempotency-Key is still being processed; retry shortly.")
    response = Response(record.response_body, status=record.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _read_key() -> str:
    key = request.headers.get(HEADER, "").strip()
    if not key:
        raise MissingIdempotencyKey(f"Send an {HEADER} header (a UUID per operation) so retries are safe.")
    if len(key) > MAX_KEY_LENGTH:
        raise MissingIdempotencyKey(f"The {HEADER} header is longer than {MAX_KEY_LENGTH} characters.")
    return key


def _existing(session: Session, scope: str, key: str) -> IdempotencyKey:
    """The claim the INSERT found taken (by this retry's first try, or a racer that committed)."""
    return session.scalars(select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)).one()


def run_idempotent(*, session: Session, principal: Principal, call: Callable[[], Response]) -> Response:
    key, scope, fingerprint = _read_key(), principal.subject, _fingerprint()
    # One statement claims the key; a retry, or a racing request that committed first, finds it taken.
    record_id = session.execute(
        _claim(session.get_bind().dialect.name),
        {"scope": scope, "key": key, "fingerprint": fingerprint, "created_at": utcnow()},
    ).scalar()
    if record_id is None:
        return _replay(_existing(session, scope, key), fingerprint)
    response = call()
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == record_id)
        .values(status_code=response.status_code, response_body=response.get_data(as_text=True))
    )
    return response


@functools.cache
def _claim(dialect: str):
    return insert_unless_exists(dialect, table_of(IdempotencyKey), ["scope", "key"])
