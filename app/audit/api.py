"""HTTP API of the audit package: admins read the log; nobody writes it through HTTP."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select

from app.api import endpoint
from app.audit.models import AuditRecord
from app.audit.schemas import AuditQuery, AuditRecordRead
from app.extensions import get_session
from app.roles import Role

bp = Blueprint("audit", __name__, url_prefix="/api/v1")


@bp.get("/audit")
@endpoint(roles=[Role.admin], query=AuditQuery, response=list[AuditRecordRead], tags=["audit"])
def list_audit_records(query: AuditQuery):
    """The audit log, newest first: who changed what, when and from where (admin only).

    Every row a staff request changes is recorded, and so are staff reads that export customer data
    (a campaign's results and enrolments) and commands an operator ran on the server. `changes`
    holds `{column: [before, after]}`; secrets and contact data read `[redacted]`. `action` matches
    exactly, or as a prefix when it ends in a dot (`reward.`); `since` is inclusive and `until`
    exclusive, both with a time zone. Nothing writes to or edits the log over HTTP.
    """
    statement = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(query.limit).offset(query.offset)
    for condition in _conditions(query):
        statement = statement.where(condition)
    return list(get_session().scalars(statement))


def _conditions(query: AuditQuery) -> list:
    conditions = []
    for name in ("actor_id", "entity_type", "entity_id", "request_id"):
        value = getattr(query, name)
        if value is not None:
            conditions.append(getattr(AuditRecord, name) == value)
    if query.action is not None:
        conditions.append(
            AuditRecord.action.startswith(query.action, autoescape=True)
            if query.action.endswith(".")
            else AuditRecord.action == query.action
        )
    if query.since is not None:
        conditions.append(AuditRecord.at >= query.since)
    if query.until is not None:
        conditions.append(AuditRecord.at < query.until)
    return conditions
