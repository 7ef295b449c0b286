"""Tables of the audit package. Audit records are append-only: the database refuses UPDATE and
DELETE on them (triggers in migration 0009), like the points ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class AuditRecord(Base):
    """One change to one row made by a staff user, or one explicit staff action (an export).

    The actor's e-mail and role are snapshots: the record stays true after the account changes.
    `changes` is {column: [before, after]}; secrets and contact data appear as "[redacted]".
    """

    __tablename__ = "audit_records"
    __audit__ = False  # the audit log does not audit itself

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Plain columns, no foreign key: a record outlives the account it names.
    actor_id: Mapped[int | None] = mapped_column()
    actor_email: Mapped[str | None] = mapped_column(String(254))
    actor_role: Mapped[str | None] = mapped_column(String(24))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(String(255))
    endpoint: Mapped[str | None] = mapped_column(String(120))
    # Every record one request wrote shares this id.
    request_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(80))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict | None] = mapped_column(JSON)
    details: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_records_at", "at"),
        Index("ix_audit_records_actor_id_at", "actor_id", "at"),
        Index("ix_audit_records_entity", "entity_type", "entity_id"),
        Index("ix_audit_records_action", "action"),
    )
