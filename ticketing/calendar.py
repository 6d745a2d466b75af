"""Working days: ``chinesecalendar`` (holidays and make-up days), admin overrides, a visible fallback.

Pure: no I/O. The overrides come from the ``calendar_day`` table through the service. The
packaged data ends at 2026; for a year nobody has entered, working days fall back to Monday to
Friday and ``warning(year)`` says so, so a deadline computed that way is never silently wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta

import chinese_calendar

from hotline.days import CENTRE_TZ

TZ = CENTRE_TZ  # day boundaries of working days are Beijing time
log = logging.getLogger(__name__)

_LIB_YEARS = {d.year for d in chinese_calendar.holidays} | {d.year for d in chinese_calendar.workdays}
LIB_FIRST, LIB_LAST = min(_LIB_YEARS), max(_LIB_YEARS)


class WorkCalendar:
    """Which days are working days, and arithmetic over them."""

    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        self.overrides = dict(overrides or {})
        # A year with any admin entry counts as entered: its other days follow the weekday rule.
        self._entered = {d.year for d in self.overrides}
        self._warned: set[int] = set()

    def source(self, year: int) -> str:
        """``override`` (admin schedule), ``chinesecalendar``, or ``fallback`` (weekends only)."""
        if year in self._entered:
            return "override"
        if LIB_FIRST <= year <= LIB_LAST:
            return "chinesecalendar"
        return "fallback"

    def warning(self, year: int) -> str | None:
        if self.source(year) != "fallback":
            return None
        return (
            f"{year}年法定节假日和调休安排尚未录入，工作日暂按周一至周五计算，"
            "期限可能不准确，请管理员在“节假日设置”中录入"
        )

    def warnings(self, start: date, end: date) -> list[str]:
        """Warnings for every year between two days (inclusive), for display next to deadlines."""
        out = []
        for year in range(min(start.year, end.year), max(start.year, end.year) + 1):
            if (w := self.warning(year)) is not None:
                out.append(w)
        return out

    def is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        source = self.source(day.year)
        if source == "chinesecalendar":
            return chinese_calendar.is_workday(day)
        if source == "fallback" and day.year not in self._warned:
            self._warned.add(day.year)
            log.warning("%s", self.warning(day.year))
        return day.weekday() < 5

    def next_workday(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """End (23:59:59 Beijing time) of the n-th working day after ``start``'s day.

        The day of ``start`` itself never counts: a matter registered on a holiday or late on a
        Friday gets ``n`` full working days.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        day = local_day(start)
        for _ in range(n):
            day = self.next_workday(day)
        return end_of_day(day)

    def working_days_between(self, a: date, b: date) -> int:
        """Working days d with a < d <= b (0 when b <= a)."""
        count, day = 0, a
        while day < b:
            day += timedelta(days=1)
            count += self.is_workday(day)
        return count


def local_day(moment: datetime) -> date:
    if moment.tzinfo is None:
        raise ValueError("naive datetime refused: pass an aware datetime")
    return moment.astimezone(TZ).date()


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), TZ)
