"""How a domain declares a scheduled job: a name, a function of the database, a trigger.

The wiring (`app/wiring.py`) lists every domain's jobs; the scheduler (`jobs/`) runs them and
`flask scheduler list` prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.config import Settings
    from app.wiring import Services


@dataclass(frozen=True)
class Job:
    name: str
    # Called as func(database=..., settings=...) (settings only when the job names a section).
    func: Callable[..., Any]
    trigger: str
    # APScheduler's trigger arguments, or a function of the settings that gives them.
    trigger_args: dict[str, Any] | Callable[[Settings], dict[str, Any]] = field(default_factory=dict)
    # How late a missed run may still start (after a restart), in minutes.
    timeout_minutes: int = 30
    # The section of the settings the job takes (`Settings.<settings>`), if any.
    settings: str | None = None

    def trigger_kwargs(self, settings: Settings) -> dict[str, Any]:
        return self.trigger_args(settings) if callable(self.trigger_args) else dict(self.trigger_args)

    def run(self, services: Services) -> Any:
        kwargs: dict[str, Any] = {"database": services.database}
        if self.settings is not None:
            kwargs["settings"] = getattr(services.settings, self.settings)
        return self.func(**kwargs)
