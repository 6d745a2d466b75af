"""Per-category limits, the deadline in force per status, and the green / yellow / red colour."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from ticketing.calendar import TZ, WorkCalendar, end_of_day
from ticketing.deadlines import DeadlineState, Limits, current_due, state, warnings_for, yellow_boundary
from ticketing.models import Status

CAL = WorkCalendar()


def test_completion_limits_per_category():
    lim = Limits()
    assert lim.completion_days("咨询") == 5
    assert lim.completion_days("投诉举报", "投诉") == 15
    assert lim.completion_days("投诉举报", "") == 15
    assert lim.completion_days("投诉举报", "举报") == 30
    assert lim.completion_days("不存在") == lim.default_completion_days
    custom = Limits(completion={"咨询": 3})
    assert custom.completion_days("咨询") == 3


def test_current_due_follows_the_status():
    d = {
        f: datetime(2026, 11, i, tzinfo=TZ)
        for i, f in enumerate(["transfer_due", "accept_due", "due_at", "callback_due"], start=17)
    }
    assert current_due(Status.REGISTERED, **d) == d["transfer_due"]
    assert current_due(Status.RETURNED, **d) == d["transfer_due"]
    assert current_due(Status.TRANSFERRED, **d) == d["accept_due"]
    for st in (Status.ACCEPTED, Status.IN_PROGRESS, Status.EXTENSION_REQUESTED, Status.UNSATISFIED):
        assert current_due(st, **d) == d["due_at"]
    assert current_due(Status.REPLIED, **d) == d["callback_due"]
    for st in (Status.DRAFT, Status.SATISFIED, Status.CLOSED, Status.ARCHIVED):
        assert current_due(st, **d) is None


def test_colours_around_a_deadline():
    due = end_of_day(date(2026, 11, 20))  # Friday
    mon = datetime(2026, 11, 16, 9, tzinfo=TZ)
    assert state(due, mon, CAL, 2) is DeadlineState.GREEN  # 4 working days left
    assert state(due, mon + timedelta(days=3), CAL, 2) is DeadlineState.YELLOW  # Thursday: 1 left
    assert state(due, mon + timedelta(days=4), CAL, 2) is DeadlineState.YELLOW  # the day itself
    assert state(due, mon + timedelta(days=4, hours=15), CAL, 2) is DeadlineState.RED  # Sat 00:00+
    assert state(None, mon, CAL, 2) is DeadlineState.NONE


def test_yellow_counts_working_days_not_calendar_days():
    # due Fri 9 Oct 2026; on Wed 30 Sep only 2 working days remain (8 and 9 Oct): green with 2 …
    due = end_of_day(date(2026, 10, 9))
    assert state(due, datetime(2026, 9, 30, 10, tzinfo=TZ), CAL, 2) is DeadlineState.GREEN
    # … and yellow on Thu 8 Oct although a holiday week has passed since
    assert state(due, datetime(2026, 10, 8, 10, tzinfo=TZ), CAL, 2) is DeadlineState.YELLOW


@pytest.mark.parametrize("yellow_days", [0, 1, 2, 3])
def test_yellow_boundary_agrees_with_the_colour(yellow_days):
    now = datetime(2026, 9, 28, 15, tzinfo=TZ)
    boundary = yellow_boundary(now, CAL, yellow_days)
    for offset in range(0, 30):
        due = end_of_day(now.date() + timedelta(days=offset))
        colour = state(due, now, CAL, yellow_days)
        assert (colour is DeadlineState.YELLOW) == (due <= boundary), (offset, colour)


def test_deadline_warnings_only_when_the_fallback_is_involved():
    now = datetime(2026, 12, 20, tzinfo=TZ)
    assert warnings_for(end_of_day(date(2026, 12, 30)), now, CAL) == []
    assert "2027" in warnings_for(end_of_day(date(2027, 1, 8)), now, CAL)[0]
