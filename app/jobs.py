"""How a domain declares a scheduled job: a name, a function of the database, a trigger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.db import Database

if TYPE_CHECKING:
    from app.config import Settings


@dataclass(frozen=True)
class Job:
    name: str
    func: Callable[..., Any]
    trigger: str
    trigger_args: dict[str, Any] = field(default_factory=dict)
    # How late a missed run may still start (after a restart), in minutes.
    timeout_minutes: int = 30

    def run(self, database: Database) -> Any:
        return self.func(database=database)


def environment_settings() -> Settings:
    """The scheduler runs jobs without an app: they read their settings from the environment."""
    from app.config import Settings  # config imports every package's settings, jobs included

    return Settings()
