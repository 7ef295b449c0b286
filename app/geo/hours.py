"""A store's weekly opening hours: the stored shape, the CSV shorthand, and "open at this moment?".

Stored and sent over the API as {"mon": ["09:00-12:30", "14:00-19:00"], "sat": ["10:00-17:00"]}:
a day that is not listed is closed; a range whose end is before its start runs past midnight
(that night's early hours belong to the day it opened); "00:00-24:00" is the whole day. No hours
at all (None) means they are not known, and the store counts as open.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
# The CSV shorthand also takes OpenStreetMap's two-letter days: "Mo-Fr 09:00-19:00; Sa 10:00-17:00".
_ALIASES = {**{day: day for day in DAYS}, **{day[:2]: day for day in DAYS}}

OpeningHours = dict[str, list[str]]


def _minutes(hours: str, minutes: str) -> int:
    return int(hours) * 60 + int(minutes)


def parse_range(text: str) -> tuple[int, int]:
    """'09:00-19:00' -> (540, 1140) minutes after midnight; an end at or before the start is next day."""
    match = _RANGE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time range like 09:00-19:00")
    start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
    if start == end or end > 24 * 60:
        raise ValueError(f"{text!r} opens and closes at the same time, or ends after 24:00")
    return start, end


def _spans(day_index: int, text: str) -> list[tuple[int, int]]:
    """The range as minutes of the week, split at the week's end."""
    start, end = parse_range(text)
    offset = day_index * 24 * 60
    if end <= start:
        end += 24 * 60
    week = 7 * 24 * 60
    begin, finish = offset + start, offset + end
    if finish <= week:
        return [(begin, finish)]
    return [(begin, week), (0, finish - week)]


def validate(hours: OpeningHours) -> OpeningHours:
    """Known days, well-formed ranges, no two ranges of the week overlapping; normalised order."""
    unknown = sorted(set(hours) - set(DAYS))
    if unknown:
        raise ValueError(f"unknown days {unknown}: use {', '.join(DAYS)}")
    spans = sorted(
        (span, f"{day} {text}") for day in hours for text in hours[day] for span in _spans(DAYS.index(day), text)
    )
    for (previous, first), (current, second) in itertools.pairwise(spans):
        if current[0] < previous[1]:
            raise ValueError(f"{first} overlaps {second}")
    return {day: sorted(hours[day]) for day in DAYS if hours.get(day)}


def is_open(hours: OpeningHours | None, zone: str, moment: datetime) -> bool:
    """Whether the store is open at `moment`, read in the store's own time zone."""
    if hours is None:
        return True
    local = moment.astimezone(ZoneInfo(zone))
    minute_of_week = (local.weekday() * 24 * 60 + local.hour * 60 + local.minute) % (7 * 24 * 60)
    return any(
        start <= minute_of_week < end
        for day in hours
        for text in hours[day]
        for start, end in _spans(DAYS.index(day), text)
    )


def parse_shorthand(text: str) -> OpeningHours | None:
    """The CSV column: 'Mo-Fr 09:00-12:30,14:00-19:00; Sa 10:00-17:00' (blank: not known)."""
    if not text.strip():
        return None
    hours: OpeningHours = {}
    for rule in filter(None, (part.strip() for part in text.split(";"))):
        days_text, _, ranges_text = rule.partition(" ")
        ranges = [item.strip() for item in ranges_text.split(",") if item.strip()]
        if not ranges:
            raise ValueError(f"{rule!r} gives days but no hours")
        for day in _days(days_text):
            hours.setdefault(day, []).extend(ranges)
    return validate(hours)


def _days(text: str) -> list[str]:
    days: list[str] = []
    for item in text.lower().split(","):
        first, _, last = item.partition("-")
        if first not in _ALIASES or (last and last not in _ALIASES):
            raise ValueError(f"{item!r} is not a day or a range of days (Mo-Fr, sat, Su)")
        start, end = DAYS.index(_ALIASES[first]), DAYS.index(_ALIASES[last or first])
        days.extend(DAYS[(start + step) % 7] for step in range((end - start) % 7 + 1))
    return days
