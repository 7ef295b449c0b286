"""Send-time rules for marketing messages: consent on record, quiet hours, frequency caps.

Checked when a worker claims the message, not when it is queued: a STOP that arrives while a
campaign waits for 08:00 still stops it.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.loyalty.models import Consent, Customer, Program
from app.messaging.config import FrequencyCap, MessagingSettings, QuietHours
from app.messaging.models import Message, MessageState

# How far ahead to look for a moment inside every zone's window before giving up.
SEARCH_DAYS = 14


@dataclass(frozen=True)
class Recipient:
    customer_id: int
    first_name: str
    phone: str | None
    timezone: str | None
    program_name: str
    program_timezone: str


@dataclass(frozen=True)
class Decision:
    send: bool
    reason: str | None = None
    # Set when the message should wait (quiet hours) instead of being suppressed.
    until: datetime | None = None
    # The provider already took it (a status callback beat the dead worker's own record).
    accepted: bool = False


SEND = Decision(send=True)


def load_recipients(session: Session, customer_ids: Iterable[int]) -> dict[int, Recipient]:
    """The customers a message can still reach; an erased customer is nobody to send to."""
    rows = session.execute(
        select(Customer.id, Customer.first_name, Customer.phone, Customer.timezone, Program.name, Program.timezone)
        .join(Program, Program.id == Customer.program_id)
        .where(Customer.id.in_(set(customer_ids)), Customer.erased_at.is_(None))
    )
    return {row[0]: Recipient(*row) for row in rows}


# --- consent ---


def latest_consents(session: Session, customer_ids: Iterable[int]) -> dict[tuple[int, str], Consent]:
    """The customer's current answer per channel: the newest row (consents are append-only)."""
    latest = (
        select(func.max(Consent.id))
        .where(Consent.customer_id.in_(set(customer_ids)))
        .group_by(Consent.customer_id, Consent.channel)
    )
    return {(c.customer_id, c.channel.value): c for c in session.scalars(select(Consent).where(Consent.id.in_(latest)))}


def consent_problem(consent: Consent | None, channel: str) -> str | None:
    """Why there is no usable opt-in, or None when there is one."""
    if consent is None:
        return f"no {channel} opt-in on record"
    if not consent.granted:
        return f"{channel} opt-in declined or withdrawn on {consent.recorded_at:%Y-%m-%d %H:%M} UTC ({consent.source})"
    if not consent.source or not consent.disclosure.strip():
        return f"the {channel} opt-in has no source or disclosure text on record"
    return None


# --- quiet hours ---

LocationSource = Callable[[Session, int], "tuple[float, float] | None"]
_location_source: LocationSource | None = None


def register_location_source(source: LocationSource | None) -> None:
    """The geo domain tells us a customer's last known (latitude, longitude)."""
    global _location_source
    _location_source = source


@functools.cache
def _timezone_finder():
    from timezonefinder import TimezoneFinder  # loads its data once, on first use

    # In memory (about 32 MB, read once): no data files held open for the life of the worker.
    return TimezoneFinder(in_memory=True)


@functools.lru_cache(maxsize=4096)
def phone_zones(phone: str) -> tuple[str, ...]:
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in phone_timezones.time_zones_for_number(number) if z != "Etc/Unknown")


@functools.lru_cache(maxsize=4096)
def phone_region(phone: str | None) -> str | None:
    if not phone:
        return None
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return None


def recipient_zones(session: Session, recipient: Recipient) -> tuple[str, ...]:
    """The customer's own zone; else where they last were; else every zone their number spans."""
    if recipient.timezone:
        return (recipient.timezone,)
    location = _location_source(session, recipient.customer_id) if _location_source else None
    if location is not None:
        zone = _timezone_finder().timezone_at(lat=location[0], lng=location[1])
        if zone:
            return (zone,)
    zones = phone_zones(recipient.phone) if recipient.phone else ()
    return zones or (recipient.program_timezone or "UTC",)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _allowed(local: datetime, rule: QuietHours) -> bool:
    if rule.days is not None and local.isoweekday() not in rule.days:
        return False
    return rule.start <= local.time() < rule.end


def _next_start(moment: datetime, zone: ZoneInfo, rule: QuietHours) -> datetime:
    local = moment.astimezone(zone)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        start = datetime.combine(day, rule.start, tzinfo=zone)
        if start >= local and (rule.days is None or day.isoweekday() in rule.days):
            return start.astimezone(moment.tzinfo)
    raise ValueError("a rule with no allowed day")


def next_allowed(now: datetime, zones: Iterable[str], rule: QuietHours) -> datetime | None:
    """`now` if it is inside the window in every zone, else the first moment that is; None if never."""
    infos = [_zone(z) for z in zones]
    moment, limit = now, now + timedelta(days=SEARCH_DAYS)
    while moment <= limit:
        outside = [z for z in infos if not _allowed(moment.astimezone(z), rule)]
        if not outside:
            return moment
        moment = max(_next_start(moment, z, rule) for z in outside)
    return None


def quiet_hours_decision(
    session: Session, recipient: Recipient, settings: MessagingSettings, now: datetime
) -> Decision:
    region = phone_region(recipient.phone)
    rule = settings.quiet_hours.tightened_by(settings.quiet_hours_by_region.get(region or ""))
    zones = recipient_zones(session, recipient)
    moment = next_allowed(now, zones, rule)
    if moment is None:
        return Decision(send=False, reason=f"no time inside quiet hours in every zone of {', '.join(zones)}")
    if moment > now:
        return Decision(
            send=False, until=moment, reason=f"quiet hours: waits until {rule.start:%H:%M} in {', '.join(zones)}"
        )
    return SEND


# --- frequency caps ---


class CapCounter:
    """Marketing messages each customer has been sent (or is being sent) within the cap windows."""

    def __init__(
        self, session: Session, customer_ids: Iterable[int], settings: MessagingSettings, now: datetime
    ) -> None:
        self.settings, self.now = settings, now
        caps = list(settings.frequency_caps.values()) + ([settings.total_cap] if settings.total_cap else [])
        self.since = now - timedelta(hours=max((c.hours for c in caps), default=0))
        rows = session.execute(
            select(Message.customer_id, Message.channel, Message.sent_at).where(
                Message.customer_id.in_(set(customer_ids)),
                Message.marketing.is_(True),
                or_(
                    Message.state == MessageState.sending,
                    Message.state.in_([MessageState.sent, MessageState.delivered]) & (Message.sent_at >= self.since),
                ),
            )
        ).all()
        self.recent: dict[int, list[tuple[str, datetime]]] = {}
        for customer_id, sent_channel, sent_at in rows:
            assert customer_id is not None  # selected by customer
            self.recent.setdefault(customer_id, []).append((sent_channel, sent_at or now))
        self.added: Counter = Counter()

    def _count(self, customer_id: int, channel: str | None, cap: FrequencyCap) -> int:
        since = self.now - timedelta(hours=cap.hours)
        stored = sum(
            1 for ch, at in self.recent.get(customer_id, ()) if (channel is None or ch == channel) and at >= since
        )
        return stored + self.added[(customer_id, channel)]

    def decision(self, customer_id: int, channel: str) -> Decision:
        checks = [(channel, self.settings.frequency_caps.get(channel)), (None, self.settings.total_cap)]
        for scope, cap in checks:
            if cap is not None and self._count(customer_id, scope, cap) >= cap.count:
                what = f"{channel} messages" if scope else "marketing messages in all"
                return Decision(send=False, reason=f"frequency cap: {cap.count} {what} per {cap.hours} h")
        self.added[(customer_id, channel)] += 1
        self.added[(customer_id, None)] += 1
        return SEND
