"""Engine and session setup, the declarative base, and the transaction helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Enum, MetaData, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import DeclarativeBase, Session, object_session, scoped_session, sessionmaker
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

from app.errors import Unprocessable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


def _configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave like a database the till can trust.

    pysqlite's own transaction handling is switched off so SQLAlchemy's BEGIN is the real one,
    and every transaction starts IMMEDIATE: writers queue on the file lock up front instead of
    failing to upgrade a read lock, which is how SQLite serializes concurrent redemptions.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class NumberOutOfRange(Unprocessable):
    slug, title = "number-out-of-range", "Number out of range"


class NulInText(Unprocessable):
    slug, title = "nul-in-text", "NUL character in text"


def _report_values_no_column_takes(engine: Engine) -> None:
    """A value no column can take (an id or a count too large, text with a NUL) is a 422, not a 500.

    SQLite refuses integers past 64 bits when binding them; PostgreSQL refuses what does not fit
    the column (SQLSTATE 22003), and psycopg any text with a NUL byte. Either way the value came
    from outside: say so, in one place for every field of every endpoint.
    """

    @event.listens_for(engine, "handle_error")
    def _on_error(context):
        error = context.original_exception
        if isinstance(error, OverflowError) or getattr(error, "sqlstate", None) == "22003":
            raise NumberOutOfRange("A number in the request is too large to be stored or looked up.") from error
        if "NUL (0x00)" in str(error):
            raise NulInText("Text in the request contains a NUL character, which cannot be stored.") from error


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        engine = create_engine(url, **kwargs)
    _report_values_no_column_takes(engine)
    return engine


class Database:
    """One engine and its session factory; `session` is the request-scoped session."""

    def __init__(self, url: str, **engine_kwargs) -> None:
        self.engine = make_engine(url, **engine_kwargs)
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.session = scoped_session(self.session_factory)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session of its own for a job or a CLI command: committed on success, else rolled back."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.session.remove()
        self.engine.dispose()


def str_enum(kind: type) -> Enum:
    """A portable enum column storing the members' values (not names), checked on write."""
    return Enum(
        kind,
        native_enum=False,
        length=24,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


def insert_unless_exists(dialect: str, table: Table, unique: list[str]) -> Insert:
    """INSERT ... ON CONFLICT (unique) DO NOTHING RETURNING id: the new row's id, or none when a
    row with those values exists (on PostgreSQL, after waiting for a racing insert to commit).
    Both databases speak this; only the SQLAlchemy construct differs."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # RETURNING, not rowcount: psycopg reports no rowcount for this statement.
    return insert(table).on_conflict_do_nothing(index_elements=unique).returning(table.c.id)


# --- typed handles on what SQLAlchemy types loosely -----------------------------------------------


def table_of(model: type[Base]) -> Table:
    """A mapped class's Table (`__table__` is typed as any FROM clause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (only a cursor result knows)."""
    assert isinstance(result, CursorResult)
    return result.rowcount


def session_of(instance: object) -> Session:
    """The session a loaded row belongs to (a receiver is handed the row, not the session)."""
    session = object_session(instance)
    assert session is not None, f"{instance!r} belongs to no session"
    return session
