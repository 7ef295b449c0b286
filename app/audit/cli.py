"""`flask audit ...`."""

from __future__ import annotations

from flask.cli import AppGroup

audit_cli = AppGroup("audit", help="audit commands.")
