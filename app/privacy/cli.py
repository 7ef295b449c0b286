"""`flask privacy ...`."""

from __future__ import annotations

from flask.cli import AppGroup

privacy_cli = AppGroup("privacy", help="privacy commands.")
