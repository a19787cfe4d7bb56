"""Business hours of a channel or team: weekly wall-clock ranges in its timezone, and holidays.

Ranges are wall-clock times in an IANA timezone, so they move with daylight saving time, and a
holiday closes a whole local day. A range may not cross midnight: write `22:00-24:00` on one day
and `00:00-02:00` on the next; back to back they are one open stretch. Everything is parsed once,
when the model is built, so `is_open` is a bisect over a day's few ranges.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far next_opening looks ahead: over a year, so a yearly holiday cannot hide an opening.
HORIZON = timedelta(days=400)

_RANGE = re.compile(r"(\d\d):(\d\d)-(\d\d):(\d\d)")
_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)

Span = tuple[timedelta, timedelta]


def _parse_range(text: str) -> Span:
    """`"HH:MM-HH:MM"` as (start, end) offsets from local midnight."""
    match = _RANGE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a range like '09:00-17:00'")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or start_m > 59:
        raise ValueError(f"{text!r} does not start at a time of day")
    if end_h > 24 or end_m > 59 or (end_h == 24 and end_m != 0):
        raise ValueError(f"{text!r} does not end at a time of day (24:00 is the latest)")
    start = timedelta(hours=start_h, minutes=start_m)
    end = timedelta(hours=end_h, minutes=end_m)
    if end <= start:
        raise ValueError(
            f"{text!r} does not end after it starts; split a range across midnight over two days"
        )
    return start, end


def _checked_range(text: str) -> str:
    _parse_range(text)
    return text


TimeRange = Annotated[str, AfterValidator(_checked_range)]


@dataclass(frozen=True, slots=True)
class _Schedule:
    """The parsed hours: timezone, per-weekday (Monday = 0) merged spans, and holidays."""

    zone: ZoneInfo
    spans: tuple[tuple[Span, ...], ...]
    starts: tuple[tuple[timedelta, ...], ...]  # the spans' starts, for bisect
    closed: frozenset[date]

    def open_on(self, day: date, wall: timedelta) -> bool:
        if day in self.closed:
            return False
        weekday = day.weekday()
        position = bisect_right(self.starts[weekday], wall) - 1
        return position >= 0 and wall < self.spans[weekday][position][1]

    def offset(self, instant: datetime) -> timedelta:
        offset = instant.astimezone(self.zone).utcoffset()
        assert offset is not None  # a ZoneInfo always knows the offset of an aware instant
        return offset

    def offset_change(self, low: datetime, high: datetime, offset: timedelta) -> datetime:
        """The first instant in (low, high] whose offset differs from `offset` (bisection)."""
        while high - low > _TICK:
            middle = low + (high - low) / 2
            if self.offset(middle) == offset:
                low = middle
            else:
                high = middle
        return high


class BusinessHours(BaseModel):
    """When a channel or team takes chats: weekly hours in a timezone, minus holidays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str
    weekly: dict[Weekday, list[TimeRange]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)

    # One private attribute, read once per call: pydantic resolves each private attribute
    # through a slow fallback, which dominated a routing decision when there were four.
    _compiled: _Schedule = PrivateAttr()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"{value!r} is not an IANA timezone name such as 'Europe/Berlin'"
            ) from None
        return value

    @field_validator("weekly")
    @classmethod
    def _ranges_do_not_overlap(cls, weekly: dict[Weekday, list[str]]) -> dict[Weekday, list[str]]:
        for day, texts in weekly.items():
            spans = sorted(zip((_parse_range(text) for text in texts), texts, strict=True))
            for (earlier, earlier_text), (later, later_text) in pairwise(spans):
                if later[0] < earlier[1]:
                    raise ValueError(f"{day}: {earlier_text!r} and {later_text!r} overlap")
        return weekly

    def model_post_init(self, context: Any, /) -> None:
        """Parse the ranges once: calls do no string parsing."""
        spans = tuple(
            _merge(sorted(_parse_range(text) for text in self.weekly.get(day, ())))
            for day in WEEKDAYS
        )
        self._compiled = _Schedule(
            zone=ZoneInfo(self.timezone),
            spans=spans,
            starts=tuple(tuple(start for start, _ in day) for day in spans),
            closed=frozenset(self.holidays),
        )

    def is_open(self, at: datetime) -> bool:
        """Whether the business is open at the aware instant `at`."""
        schedule = self._compiled
        local = _aware(at).astimezone(schedule.zone)
        return schedule.open_on(local.date(), _since_midnight(local))

    def next_opening(self, at: datetime) -> datetime | None:
        """The next moment it is open, in UTC: `at` itself if open; None if not within HORIZON."""
        schedule = self._compiled
        cursor = _aware(at).astimezone(UTC)
        if not any(schedule.spans):
            return None
        limit = cursor + HORIZON
        # Walk forward in stretches of one local day, cut at DST changes, so within a stretch
        # the wall clock runs evenly with UTC and an opening is simple arithmetic.
        while cursor < limit:
            offset = schedule.offset(cursor)
            wall = cursor.replace(tzinfo=None) + offset
            day, begin = wall.date(), _since_midnight(wall)
            end = cursor + (_DAY - begin)
            if schedule.offset(end - _TICK) != offset:
                end = schedule.offset_change(cursor, end - _TICK, offset)
            if day not in schedule.closed:
                stop = begin + (end - cursor)
                for start, close in schedule.spans[day.weekday()]:
                    first = max(start, begin)
                    if first < min(close, stop):
                        return cursor + (first - begin)
            cursor = end
        return None


def _merge(spans: list[Span]) -> tuple[Span, ...]:
    # Back-to-back ranges (09:00-12:00, 12:00-13:00) are one open stretch: no false opening.
    merged: list[Span] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("business hours need an aware datetime (with a timezone)")
    return at


def _since_midnight(wall: datetime) -> timedelta:
    return wall.replace(tzinfo=None) - datetime.combine(wall.date(), time())
