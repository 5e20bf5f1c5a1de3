"""Hungarian working days and the support desk's opening hours (policy 003,
docs/policy.md#opening-hours-and-working-days), in Europe/Budapest.

Mon-Thu 7:30-16:30, Fri 8:00-14:00, closed on Hungarian public holidays and bridge days, open on the Saturdays
that Hungary transfers a working day to (the `holidays` library knows them; such a Saturday keeps Friday hours).
"""
from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays

BUDAPEST = ZoneInfo("Europe/Budapest")
HOURS = {0: (time(7, 30), time(16, 30)), 1: (time(7, 30), time(16, 30)), 2: (time(7, 30), time(16, 30)),
         3: (time(7, 30), time(16, 30)), 4: (time(8, 0), time(14, 0))}
SATURDAY_HOURS = HOURS[4]


@functools.lru_cache(maxsize=64)
def _calendar(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("HU", years=year)


def is_holiday(day: date) -> bool:
    return day in _calendar(day.year)


def is_transferred_working_day(day: date) -> bool:
    return day in getattr(_calendar(day.year), "weekend_workdays", set())


def is_working_day(day: date) -> bool:
    if is_transferred_working_day(day):
        return True
    return day.weekday() < 5 and not is_holiday(day)


def opening_hours(day: date) -> tuple[time, time] | None:
    """The desk's hours on `day`, or None when it is closed all day."""
    if not is_working_day(day):
        return None
    return HOURS.get(day.weekday(), SATURDAY_HOURS)


def _local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is required (store and pass UTC)")
    return moment.astimezone(BUDAPEST)


def is_open(moment: datetime) -> bool:
    local = _local(moment)
    hours = opening_hours(local.date())
    return hours is not None and hours[0] <= local.time() < hours[1]


def next_working_day(day: date) -> date:
    day += timedelta(days=1)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def first_business_day(received: datetime) -> date:
    """The working day on which a receipt counts as received: the same day when it came before closing time,
    otherwise the next working day."""
    local = _local(received)
    hours = opening_hours(local.date())
    if hours is not None and local.time() < hours[1]:
        return local.date()
    return next_working_day(local.date())


def due_after_working_days(received: datetime, days: int) -> datetime:
    """The moment (UTC) by which something due `days` working days after `received` must be done: closing
    time on the `days`-th working day after the day the receipt counts as received."""
    day = first_business_day(received)
    for _ in range(days):
        day = next_working_day(day)
    close = opening_hours(day)[1]  # type: ignore[index]  # a working day always has hours
    return datetime.combine(day, close, BUDAPEST).astimezone(timezone.utc)


def warning_starts(due_at: datetime) -> datetime:
    """Opening time (UTC) of the working day before the deadline's day: from then on a deadline is "due" and
    warned about, so staff have a working day to act."""
    day = _local(due_at).date() - timedelta(days=1)
    while not is_working_day(day):
        day -= timedelta(days=1)
    opens = opening_hours(day)[0]  # type: ignore[index]
    return datetime.combine(day, opens, BUDAPEST).astimezone(timezone.utc)
