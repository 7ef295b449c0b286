"""`flask webhooks ...`."""

from __future__ import annotations

from flask.cli import AppGroup

webhooks_cli = AppGroup("webhooks", help="webhooks commands.")
