"""HTTP API of the privacy package."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("privacy", __name__, url_prefix="/api/v1")
