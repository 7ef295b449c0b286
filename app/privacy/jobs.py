"""Scheduled jobs of the privacy package."""

from __future__ import annotations

from app.jobs import Job

JOBS: list[Job] = []
