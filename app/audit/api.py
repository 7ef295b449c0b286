"""HTTP API of the audit package."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("audit", __name__, url_prefix="/api/v1")
