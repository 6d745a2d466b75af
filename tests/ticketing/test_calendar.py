"""Working days across the 2026 holidays, make-up Saturdays, and the 2027 fallback."""

from __future__ import annotations

import logging
from datetime import date, datetime

import pytest

from ticketing.calendar import TZ, WorkCalendar, local_day


def at(y, m, d, h=10):
    return datetime(y, m, d, h, 0, tzinfo=TZ)


def test_national_day_2026_is_skipped():
    cal = WorkCalendar()
    # Wed 30 Sep, transfer within 2 working days: 1–7 Oct are holidays, so Thu 8 and Fri 9 Oct
    due = cal.add_working_days(at(2026, 9, 30), 2)
    assert due == datetime(2026, 10, 9, 23, 59, 59, tzinfo=TZ)
    assert not any(cal.is_workday(date(2026, 10, d)) for d in range(1, 8))


def test_make_up_saturday_after_national_day_counts():
    cal = WorkCalendar()
    assert cal.is_workday(date(2026, 10, 10))  # Saturday, 调休上班
    assert cal.add_working_days(at(2026, 10, 9), 1).date() == date(2026, 10, 10)
    # 5 working days from Wed 30 Sep: 8, 9, 10 (Sat), 12, 13 Oct
    assert cal.add_working_days(at(2026, 9, 30), 5).date() == date(2026, 10, 13)


def test_spring_festival_2026_with_its_make_up_saturday():
    cal = WorkCalendar()
    assert cal.is_workday(date(2026, 2, 14))  # Saturday before the festival is worked
    assert not cal.is_workday(date(2026, 2, 16))  # Monday inside the festival
    # Fri 13 Feb: day 1 is Sat 14 Feb (make-up), then 15–23 Feb off, day 2 is Tue 24 Feb
    assert cal.add_working_days(at(2026, 2, 13), 2).date() == date(2026, 2, 24)
    assert cal.working_days_between(date(2026, 2, 13), date(2026, 2, 24)) == 2


def test_a_holiday_intake_gets_full_working_days():
    cal = WorkCalendar()
    # registered on National Day itself: the day does not count, 8 Oct is day 1
    assert cal.add_working_days(at(2026, 10, 3), 1).date() == date(2026, 10, 8)


def test_2027_falls_back_to_weekends_with_a_visible_warning(caplog):
    cal = WorkCalendar()
    assert cal.source(2026) == "chinesecalendar"
    assert cal.source(2027) == "fallback"
    warning = cal.warning(2027)
    assert warning is not None and "2027" in warning and "周一至周五" in warning
    assert cal.warning(2026) is None
    with caplog.at_level(logging.WARNING, logger="ticketing.calendar"):
        # Thu 31 Dec 2026 + 2: Fri 1 Jan 2027 counts (no data: weekends only), then Mon 4 Jan
        assert cal.add_working_days(at(2026, 12, 31), 2).date() == date(2027, 1, 4)
    assert any("2027" in r.getMessage() for r in caplog.records)
    assert cal.warnings(date(2026, 12, 31), date(2027, 1, 4)) == [warning]


def test_admin_overrides_enter_a_new_year():
    # the admin enters New Year's Day 2027 as a holiday and a make-up Sunday
    cal = WorkCalendar({date(2027, 1, 1): False, date(2027, 2, 7): True})
    assert cal.source(2027) == "override"
    assert cal.warning(2027) is None
    assert cal.add_working_days(at(2026, 12, 31), 2).date() == date(2027, 1, 5)
    assert cal.is_workday(date(2027, 2, 7))  # a Sunday, worked
    assert cal.is_workday(date(2027, 3, 3))  # other days follow the weekday rule


def test_overrides_also_correct_known_years():
    cal = WorkCalendar({date(2026, 11, 18): False})  # e.g. a local holiday
    assert not cal.is_workday(date(2026, 11, 18))
    assert cal.is_workday(date(2026, 11, 17))


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="naive"):
        local_day(datetime(2026, 1, 1))


def test_day_boundaries_are_beijing_time():
    from datetime import UTC

    # 17:00 UTC on 30 Sep is already 1 Oct in Beijing
    assert local_day(datetime(2026, 9, 30, 17, 0, tzinfo=UTC)) == date(2026, 10, 1)
