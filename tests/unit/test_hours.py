"""Business hours: weekly wall-clock ranges in a timezone, holidays, and daylight saving time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bridge.routing.hours import BusinessHours

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_9_TO_5 = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
OFFICE = BusinessHours(timezone="Europe/Berlin", weekly=WEEKDAYS_9_TO_5)


def berlin(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=BERLIN)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


# -- is_open ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (berlin(2024, 5, 6, 8, 59), False),  # Monday, before opening
        (berlin(2024, 5, 6, 9, 0), True),  # the start is inside
        (berlin(2024, 5, 6, 16, 59, 59), True),
        (berlin(2024, 5, 6, 17, 0), False),  # the end is outside
        (berlin(2024, 5, 10, 12, 0), True),  # Friday
        (berlin(2024, 5, 11, 12, 0), False),  # Saturday
        (berlin(2024, 5, 12, 12, 0), False),  # Sunday
    ],
)
def test_weekday_ranges(at: datetime, expected: bool) -> None:
    assert OFFICE.is_open(at) is expected


def test_instants_are_read_in_the_business_timezone() -> None:
    # 07:30 UTC is 09:30 in Berlin in summer: open, whatever zone the caller used.
    assert OFFICE.is_open(utc(2024, 5, 6, 7, 30))
    assert OFFICE.is_open(datetime(2024, 5, 6, 3, 30, tzinfo=ZoneInfo("America/New_York")))
    assert not OFFICE.is_open(utc(2024, 5, 6, 6, 30))


def test_several_ranges_a_day_leave_a_lunch_break() -> None:
    hours = BusinessHours(timezone="Europe/Berlin", weekly={"mon": ["13:00-17:00", "08:00-12:00"]})
    assert hours.is_open(berlin(2024, 5, 6, 11, 59))
    assert not hours.is_open(berlin(2024, 5, 6, 12, 30))
    assert hours.is_open(berlin(2024, 5, 6, 13, 0))
    assert hours.next_opening(berlin(2024, 5, 6, 12, 30)) == berlin(2024, 5, 6, 13, 0)


def test_all_day() -> None:
    hours = BusinessHours(timezone="Europe/Berlin", weekly={"sat": ["00:00-24:00"]})
    assert hours.is_open(berlin(2024, 5, 11, 0, 0))
    assert hours.is_open(berlin(2024, 5, 11, 23, 59, 59))
    assert not hours.is_open(berlin(2024, 5, 12, 0, 0))


def test_night_shift_across_midnight_is_written_over_two_days() -> None:
    hours = BusinessHours(
        timezone="Europe/Berlin", weekly={"mon": ["22:00-24:00"], "tue": ["00:00-06:00"]}
    )
    assert hours.is_open(berlin(2024, 5, 6, 23, 59))
    assert hours.is_open(berlin(2024, 5, 7, 0, 0))
    assert not hours.is_open(berlin(2024, 5, 7, 6, 0))
    # Back to back over midnight is one stretch: midnight is not a new opening.
    assert hours.next_opening(berlin(2024, 5, 7, 0, 0)) == berlin(2024, 5, 7, 0, 0)


def test_holidays_close_a_whole_local_day() -> None:
    hours = BusinessHours(timezone="Europe/Berlin", weekly=WEEKDAYS_9_TO_5, holidays=["2024-05-09"])
    assert not hours.is_open(berlin(2024, 5, 9, 12, 0))
    assert hours.is_open(berlin(2024, 5, 8, 12, 0))
    assert hours.is_open(berlin(2024, 5, 10, 12, 0))


def test_a_holiday_is_a_date_in_the_business_timezone() -> None:
    tokyo = BusinessHours(
        timezone="Asia/Tokyo", weekly={"thu": ["00:00-24:00"]}, holidays=[date(2024, 5, 9)]
    )
    # Wednesday 20:00 UTC is already Thursday 05:00 in Tokyo: the holiday.
    assert not tokyo.is_open(utc(2024, 5, 8, 20, 0))
    assert tokyo.is_open(utc(2024, 5, 15, 20, 0))  # the next Thursday


# -- daylight saving time -------------------------------------------------------------------------


def test_hours_follow_the_wall_clock_across_the_spring_change() -> None:
    every_day = BusinessHours(
        timezone="Europe/Berlin", weekly={day: ["09:00-17:00"] for day in ("sat", "sun")}
    )
    # Saturday 30 March 2024 is still CET (UTC+1); from Sunday 31 March it is CEST (UTC+2).
    assert not every_day.is_open(utc(2024, 3, 30, 7, 59))
    assert every_day.is_open(utc(2024, 3, 30, 8, 0))
    assert every_day.is_open(utc(2024, 3, 31, 7, 0))
    assert not every_day.is_open(utc(2024, 3, 31, 6, 59))
    assert every_day.next_opening(utc(2024, 3, 30, 20, 0)) == utc(2024, 3, 31, 7, 0)


def test_hours_follow_the_wall_clock_across_the_autumn_change() -> None:
    every_day = BusinessHours(
        timezone="Europe/Berlin", weekly={day: ["09:00-17:00"] for day in ("sat", "sun")}
    )
    # Sunday 27 October 2024 is back on CET (UTC+1).
    assert every_day.next_opening(utc(2024, 10, 26, 20, 0)) == utc(2024, 10, 27, 8, 0)
    assert not every_day.is_open(utc(2024, 10, 27, 7, 59))
    assert every_day.is_open(utc(2024, 10, 27, 15, 59))
    assert not every_day.is_open(utc(2024, 10, 27, 16, 0))


def test_a_range_starting_in_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    hours = BusinessHours(timezone="Europe/Berlin", weekly={"sun": ["02:30-04:00"]})
    # At 01:00 UTC the clock jumps from 02:00 CET to 03:00 CEST: inside 02:30-04:00.
    assert not hours.is_open(utc(2024, 3, 31, 0, 59, 59))
    assert hours.is_open(utc(2024, 3, 31, 1, 0))
    assert hours.next_opening(utc(2024, 3, 30, 12, 0)) == utc(2024, 3, 31, 1, 0)


def test_a_range_inside_the_skipped_hour_does_not_open_that_day() -> None:
    hours = BusinessHours(timezone="Europe/Berlin", weekly={"sun": ["02:10-02:50"]})
    assert hours.next_opening(utc(2024, 3, 30, 12, 0)) == berlin(2024, 4, 7, 2, 10)


def test_the_repeated_hour_in_autumn_opens_twice() -> None:
    hours = BusinessHours(timezone="Europe/Berlin", weekly={"sun": ["02:00-02:30"]})
    # 02:00-03:00 happens twice on 27 October 2024: first CEST (00:00 UTC), then CET (01:00 UTC).
    assert hours.is_open(utc(2024, 10, 27, 0, 15))
    assert not hours.is_open(utc(2024, 10, 27, 0, 45))  # 02:45 CEST
    assert hours.is_open(utc(2024, 10, 27, 1, 15))  # 02:15 CET
    first = hours.next_opening(utc(2024, 10, 26, 12, 0))
    second = hours.next_opening(utc(2024, 10, 27, 0, 45))
    assert first == utc(2024, 10, 27, 0, 0)
    assert second == utc(2024, 10, 27, 1, 0)
    assert second is not None
    assert (second.astimezone(BERLIN).hour, second.astimezone(BERLIN).fold) == (2, 1)


def test_a_range_spanning_the_repeated_hour_reopens_when_the_clock_goes_back() -> None:
    hours = BusinessHours(timezone="Europe/Berlin", weekly={"sun": ["01:00-02:30"]})
    # 02:45 CEST is closed; at 03:00 CEST the clock goes back to 02:00 CET, inside the range.
    assert hours.next_opening(utc(2024, 10, 27, 0, 45)) == utc(2024, 10, 27, 1, 0)


# -- next_opening -------------------------------------------------------------------------------


def test_next_opening_is_now_when_open_and_always_utc() -> None:
    at = berlin(2024, 5, 6, 10, 0)
    opening = OFFICE.next_opening(at)
    assert opening == at
    assert opening is not None and opening.tzinfo is UTC


def test_next_opening_later_the_same_day() -> None:
    assert OFFICE.next_opening(berlin(2024, 5, 6, 6, 0)) == utc(2024, 5, 6, 7, 0)


def test_next_opening_across_a_weekend() -> None:
    friday_evening = berlin(2024, 5, 10, 18, 0)
    assert OFFICE.next_opening(friday_evening) == berlin(2024, 5, 13, 9, 0)


def test_next_opening_across_a_weekend_and_a_holiday() -> None:
    # Whit Monday 2024 is 20 May.
    hours = BusinessHours(timezone="Europe/Berlin", weekly=WEEKDAYS_9_TO_5, holidays=["2024-05-20"])
    assert hours.next_opening(berlin(2024, 5, 17, 18, 0)) == berlin(2024, 5, 21, 9, 0)


def test_next_opening_across_the_year_end_holidays() -> None:
    hours = BusinessHours(
        timezone="Europe/Berlin",
        weekly=WEEKDAYS_9_TO_5,
        holidays=[date(2024, 12, 24) + timedelta(days=n) for n in range(9)],
    )
    assert hours.next_opening(berlin(2024, 12, 23, 17, 0)) == berlin(2025, 1, 2, 9, 0)


def test_never_opens_without_hours() -> None:
    assert BusinessHours(timezone="UTC").next_opening(utc(2024, 5, 6)) is None
    assert not BusinessHours(timezone="UTC").is_open(utc(2024, 5, 6))


def test_never_opens_when_every_open_day_is_a_holiday_within_the_horizon() -> None:
    mondays = [date(2024, 5, 6) + timedelta(weeks=n) for n in range(60)]
    hours = BusinessHours(timezone="UTC", weekly={"mon": ["09:00-10:00"]}, holidays=mondays)
    assert hours.next_opening(utc(2024, 5, 6)) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        OFFICE.is_open(datetime(2024, 5, 6, 10, 0))
    with pytest.raises(ValueError, match="aware"):
        OFFICE.next_opening(datetime(2024, 5, 6, 10, 0))


# -- validation ---------------------------------------------------------------------------------


def _error_fields(**raw: Any) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        BusinessHours.model_validate(raw)
    return [error["loc"] for error in caught.value.errors()]


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "Europe", "../etc/passwd", "/etc/localtime"])
def test_bad_timezones_name_the_field(name: str) -> None:
    assert _error_fields(timezone=name) == [("timezone",)]


@pytest.mark.parametrize(
    "text",
    [
        "9:00-17:00",
        "09:00 - 17:00",
        "09:00-25:00",
        "24:00-24:00",
        "09:60-10:00",
        "09:00-24:30",
        "17:00-09:00",
        "09:00-09:00",
        "open",
    ],
)
def test_bad_time_ranges_name_the_day_and_entry(text: str) -> None:
    loc = _error_fields(timezone="UTC", weekly={"tue": ["08:00-08:30", text]})
    assert loc == [("weekly", "tue", 1)]


def test_overlapping_ranges_on_one_day_are_refused() -> None:
    with pytest.raises(ValidationError, match="wed: '09:00-12:00' and '11:00-13:00' overlap"):
        BusinessHours(timezone="UTC", weekly={"wed": ["11:00-13:00", "09:00-12:00"]})


def test_unknown_days_and_fields_are_refused() -> None:
    assert _error_fields(timezone="UTC", weekly={"monday": ["09:00-17:00"]})[0][0] == "weekly"
    assert _error_fields(timezone="UTC", opening="09:00") == [("opening",)]
    assert _error_fields(timezone="UTC", holidays=["next friday"]) == [("holidays", 0)]


def test_hours_from_config_shape() -> None:
    hours = BusinessHours.model_validate(
        {
            "timezone": "America/New_York",
            "weekly": {"mon": ["09:00-12:00", "12:00-17:00"], "sat": ["00:00-24:00"]},
            "holidays": ["2024-07-04"],
        }
    )
    assert hours.is_open(datetime(2024, 5, 6, 12, 0, tzinfo=ZoneInfo("America/New_York")))


# -- properties ---------------------------------------------------------------------------------

ranges = st.tuples(st.integers(0, 47), st.integers(1, 48)).filter(lambda r: r[0] < r[1])


@st.composite
def business_hours(draw: st.DrawFn) -> BusinessHours:
    weekly: dict[str, list[str]] = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        start, end = draw(st.one_of(st.none(), ranges)) or (0, 0)
        if start < end:
            weekly[day] = [f"{start // 2:02}:{start % 2 * 30:02}-{end // 2:02}:{end % 2 * 30:02}"]
    holidays = draw(st.lists(st.dates(date(2024, 1, 1), date(2024, 12, 31)), max_size=20))
    zone = draw(st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]))
    return BusinessHours(timezone=zone, weekly=weekly, holidays=holidays)


instants = st.datetimes(datetime(2024, 1, 1), datetime(2024, 12, 31), timezones=st.just(UTC))


@settings(max_examples=100, deadline=None)
@given(hours=business_hours(), at=instants)
def test_next_opening_is_the_first_open_moment(hours: BusinessHours, at: datetime) -> None:
    opening = hours.next_opening(at)
    if opening is None:
        assert not any(hours.is_open(at + timedelta(minutes=30 * n)) for n in range(48 * 8))
        return
    assert opening >= at
    assert hours.is_open(opening)
    if opening > at:
        assert not hours.is_open(at)
        assert not hours.is_open(opening - timedelta(microseconds=1))
        # Closed all the way from `at` to the opening (sampled every 15 minutes, up to 8 days).
        probe, stop = at, min(opening, at + timedelta(days=8))
        while probe < stop:
            assert not hours.is_open(probe)
            probe += timedelta(minutes=15)
