"""Scheduled jobs of the webhooks package."""

from __future__ import annotations

from app.jobs import Job

JOBS: list[Job] = []
