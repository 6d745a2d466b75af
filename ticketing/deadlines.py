"""Deadlines per status and their colour (green / yellow / red). Pure: values and a calendar in."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ticketing.calendar import WorkCalendar, local_day
from ticketing.models import Category, Status

DEFAULT_COMPLETION_DAYS = {
    "咨询": 5,
    "投诉": 15,
    "举报": 30,
    "建议": 15,
    "一般诉求": 5,
    "求助": 5,
    "表扬": 5,
}


@dataclass(frozen=True)
class Limits:
    """Time limits (working days unless named in hours), from settings in the wiring."""

    transfer_days: int = 2  # centre → department (004 §5.2.2.1)
    accept_days: int = 1  # department signs for it (003 篇2)
    return_hours: int = 24  # a mis-assigned ticket goes back within 24 h
    callback_days: int = 3  # callback after the reply (002)
    yellow_days: int = 2  # yellow on the due day and the (yellow_days - 1) working days before it
    completion: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_COMPLETION_DAYS))
    default_completion_days: int = 5

    def completion_days(self, category: str, subcategory: str = "") -> int:
        """Working days to complete: 投诉举报 is split by its subcategory (投诉 15, 举报 30)."""
        if category == Category.COMPLAINT:
            key = "举报" if subcategory == "举报" else "投诉"
            return self.completion.get(key, self.completion.get(category, self.default_completion_days))
        return self.completion.get(category, self.default_completion_days)


class DeadlineState(enum.StrEnum):
    NONE = "none"  # no running deadline (draft, satisfied, closed, archived)
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"

    @property
    def label(self) -> str:
        return {"none": "无时限", "green": "正常", "yellow": "临近期限", "red": "已超期"}[self.value]


def current_due(
    status: Status | str,
    *,
    transfer_due: datetime | None,
    accept_due: datetime | None,
    due_at: datetime | None,
    callback_due: datetime | None,
) -> datetime | None:
    """The deadline that runs in ``status``."""
    status = Status(status)
    if status in (Status.REGISTERED, Status.RETURNED):
        return transfer_due
    if status is Status.TRANSFERRED:
        return accept_due
    if status in (Status.ACCEPTED, Status.IN_PROGRESS, Status.EXTENSION_REQUESTED):
        return due_at
    if status is Status.REPLIED:
        return callback_due
    if status is Status.UNSATISFIED:
        return due_at  # redo runs against the (extended) completion deadline
    return None


def state(due: datetime | None, now: datetime, calendar: WorkCalendar, yellow_days: int) -> DeadlineState:
    """Red when overdue; yellow when fewer than ``yellow_days`` working days remain after today."""
    if due is None:
        return DeadlineState.NONE
    if now > due:
        return DeadlineState.RED
    left = calendar.working_days_between(local_day(now), local_day(due))
    return DeadlineState.YELLOW if left < yellow_days else DeadlineState.GREEN


def yellow_boundary(now: datetime, calendar: WorkCalendar, yellow_days: int) -> datetime:
    """Deadlines at or before this moment are yellow (or red): lets SQL filter by colour."""
    if yellow_days <= 0:
        return now
    # due day must be before the yellow_days-th working day after today
    return calendar.add_working_days(now, yellow_days) - timedelta(days=1)


def warnings_for(due: datetime | None, now: datetime, calendar: WorkCalendar) -> list[str]:
    """Calendar fallback warnings relevant to a deadline (shown beside it)."""
    if due is None:
        return []
    return calendar.warnings(local_day(now), local_day(due))


def working_days_left(due: datetime | None, now: datetime, cal: WorkCalendar) -> int | None:
    """Working days from today to the due day (0: due today; negative: that many working days late).

    >>> from ticketing.calendar import TZ
    >>> cal = WorkCalendar({})
    >>> mon = datetime(2026, 11, 16, 9, tzinfo=TZ)
    >>> working_days_left(datetime(2026, 11, 18, 23, 59, tzinfo=TZ), mon, cal), working_days_left(None, mon, cal)
    (2, None)
    >>> working_days_left(datetime(2026, 11, 13, 23, 59, tzinfo=TZ), mon, cal)  # due last Friday
    -1
    """
    if due is None:
        return None
    today, day = local_day(now), local_day(due)
    if day >= today:
        return cal.working_days_between(today, day)
    return -cal.working_days_between(day, today)
