"""Working days and opening hours in Budapest (policy 003): weekends, public holidays, transferred Saturdays, and
"due N working days after receipt"."""
from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest

from core import workdays
from core.workdays import BUDAPEST


def bud(*args: int) -> datetime:
    """An aware Budapest wall-clock time."""
    return datetime(*args, tzinfo=BUDAPEST)


@pytest.mark.parametrize("day", [date(2026, 11, 21), date(2026, 11, 22)])  # Saturday, Sunday
def test_weekends_are_closed(day):
    assert not workdays.is_working_day(day)
    assert workdays.opening_hours(day) is None
    assert not workdays.is_open(bud(day.year, day.month, day.day, 10, 0))


@pytest.mark.parametrize("day", [
    date(2026, 4, 6),     # Easter Monday
    date(2026, 5, 25),    # Whit Monday
    date(2026, 10, 23),   # National Day, a Friday in 2026
    date(2025, 10, 23),   # National Day, a Thursday in 2025
    date(2026, 12, 25),   # Christmas Day
    date(2026, 12, 26),   # Second day of Christmas (a Saturday, closed anyway)
    date(2025, 12, 26),   # Second day of Christmas on a Friday
    date(2026, 3, 15),    # National Day on a Sunday
    date(2026, 1, 1),
])
def test_public_holidays_are_closed(day):
    assert workdays.is_holiday(day)
    assert not workdays.is_working_day(day)
    assert workdays.opening_hours(day) is None


def test_hours_mon_to_thu_and_friday():
    assert workdays.opening_hours(date(2026, 11, 23)) == (time(7, 30), time(16, 30))  # Monday
    assert workdays.opening_hours(date(2026, 11, 26)) == (time(7, 30), time(16, 30))  # Thursday
    assert workdays.opening_hours(date(2026, 11, 27)) == (time(8, 0), time(14, 0))    # Friday


@pytest.mark.parametrize("moment, is_open", [
    (bud(2026, 11, 23, 7, 29), False),
    (bud(2026, 11, 23, 7, 30), True),
    (bud(2026, 11, 23, 16, 29), True),
    (bud(2026, 11, 23, 16, 30), False),   # closing time is exclusive
    (bud(2026, 11, 27, 7, 45), False),    # Friday opens at 8:00
    (bud(2026, 11, 27, 13, 59), True),
    (bud(2026, 11, 27, 14, 0), False),    # Friday closes at 14:00
    (datetime(2026, 11, 23, 6, 45, tzinfo=timezone.utc), True),  # 7:45 in Budapest (CET, UTC+1)
    (datetime(2026, 7, 6, 14, 45, tzinfo=timezone.utc), False),  # 16:45 in Budapest (CEST, UTC+2)
])
def test_is_open_in_budapest_time(moment, is_open):
    assert workdays.is_open(moment) is is_open


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        workdays.is_open(datetime(2026, 11, 23, 10, 0))
    with pytest.raises(ValueError):
        workdays.due_after_working_days(datetime(2026, 11, 23, 10, 0), 2)


def _transferred_saturdays() -> list[date]:
    calendar = workdays._calendar(2025)
    return sorted(getattr(calendar, "weekend_workdays", set()))


@pytest.mark.skipif(not _transferred_saturdays(), reason="this holidays release does not know HU's transferred days")
def test_transferred_working_saturdays_are_open_and_their_bridge_days_closed():
    # 2025: Saturday 17 May worked for Friday 2 May; Saturday 18 October for Friday 24 October (holidays' data).
    assert date(2025, 5, 17) in _transferred_saturdays()
    for saturday in (date(2025, 5, 17), date(2025, 10, 18), date(2025, 12, 13)):
        assert saturday.weekday() == 5
        assert workdays.is_transferred_working_day(saturday)
        assert workdays.is_working_day(saturday)
        assert workdays.opening_hours(saturday) == (time(8, 0), time(14, 0))
    for bridge in (date(2025, 5, 2), date(2025, 10, 24), date(2025, 12, 24)):
        assert not workdays.is_working_day(bridge)
    assert not workdays.is_transferred_working_day(date(2025, 5, 24))  # an ordinary Saturday


def test_next_working_day_skips_weekend_and_holidays():
    assert workdays.next_working_day(date(2026, 11, 20)) == date(2026, 11, 23)  # Fri -> Mon
    assert workdays.next_working_day(date(2026, 4, 2)) == date(2026, 4, 7)     # Good Friday, Easter, Easter Monday
    assert workdays.next_working_day(date(2026, 12, 23)) == date(2026, 12, 28)  # 24, 25, 26, 27 closed


# "Due 2 working days after receipt": the receipt counts on the day it arrives if it arrives before closing time
# on a working day, otherwise on the next working day; the deadline is closing time two working days later.
@pytest.mark.parametrize("received, due_local", [
    # Tuesday 10:00, inside hours -> Thursday 16:30
    (bud(2026, 11, 24, 10, 0), bud(2026, 11, 26, 16, 30)),
    # Tuesday 06:00, before opening -> still counts Tuesday -> Thursday 16:30
    (bud(2026, 11, 24, 6, 0), bud(2026, 11, 26, 16, 30)),
    # Tuesday 18:00, after closing -> counts Wednesday -> Friday 14:00
    (bud(2026, 11, 24, 18, 0), bud(2026, 11, 27, 14, 0)),
    # Thursday 17:00 -> counts Friday -> Tuesday 16:30
    (bud(2026, 11, 26, 17, 0), bud(2026, 12, 1, 16, 30)),
    # Friday 15:00, after Friday's 14:00 close -> counts Monday -> Wednesday
    (bud(2026, 11, 27, 15, 0), bud(2026, 12, 2, 16, 30)),
    # Saturday -> counts Monday -> Wednesday
    (bud(2026, 11, 28, 11, 0), bud(2026, 12, 2, 16, 30)),
    # Thursday before Easter 2026, inside hours: Good Friday and Easter Monday closed -> Wed 8 April
    (bud(2026, 4, 2, 9, 0), bud(2026, 4, 8, 16, 30)),
    # Wednesday 21 October 2026: 23 October (Friday) is a holiday -> Monday 26 October
    (bud(2026, 10, 21, 12, 0), bud(2026, 10, 26, 16, 30)),
    # Christmas: Wednesday 23 Dec 2026 after hours -> counts Mon 28 -> Wed 30
    (bud(2026, 12, 23, 17, 0), bud(2026, 12, 30, 16, 30)),
])
def test_due_two_working_days_after_receipt(received, due_local):
    due = workdays.due_after_working_days(received.astimezone(timezone.utc), 2)
    assert due.tzinfo is not None and due.utcoffset().total_seconds() == 0
    assert due == due_local


@pytest.mark.skipif(not _transferred_saturdays(), reason="this holidays release does not know HU's transferred days")
def test_due_counts_a_transferred_saturday():
    # Thursday 16 Oct 2025 10:00: Fri 17 is day 1, Saturday 18 (worked) is day 2, closing at Friday hours.
    assert workdays.due_after_working_days(bud(2025, 10, 16, 10, 0), 2) == bud(2025, 10, 18, 14, 0)
