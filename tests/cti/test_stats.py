"""Rolling figures with an injected clock, across midnight (Beijing time)."""

from __future__ import annotations

import datetime as dt
import doctest
from zoneinfo import ZoneInfo

import cti.stats
from cti.stats import AnswerStats, Outcome, local_midnight

BJ = ZoneInfo("Asia/Shanghai")
MIDNIGHT = dt.datetime(2026, 11, 23, tzinfo=BJ).timestamp()


def test_doctests() -> None:
    assert doctest.testmod(cti.stats).failed == 0


def test_across_midnight() -> None:
    s = AnswerStats(rule_ms=15000)
    s.add(Outcome(MIDNIGHT - 3600 * 20, True, 20000))  # yesterday 04:00, late
    s.add(Outcome(MIDNIGHT - 10, True, 4000))  # 23:59:50, in time
    s.add(Outcome(MIDNIGHT - 5, False, 31000))  # 23:59:55, abandoned
    s.add(Outcome(MIDNIGHT + 10, True, 15000))  # 00:00:10, exactly 15 s: in time
    s.add(Outcome(MIDNIGHT + 20, True, 15001))  # late
    now = MIDNIGHT + 60
    f = s.figures(now, local_midnight(now, BJ))
    assert (f.offered_today, f.answered, f.abandoned, f.within_rule_today) == (2, 2, 0, 1)
    assert f.pct_within_rule_today == 50.0
    assert (f.offered_24h, f.answered_24h, f.within_rule_24h) == (5, 4, 2)
    assert f.pct_within_rule_24h == 50.0
    assert f.completion_24h == 80.0 and f.abandoned_waits_ms_24h == (31000,)
    assert f.mean_wait_ms_today == 15000.5
    # one minute before midnight the same data is "today" differently
    before = MIDNIGHT - 1
    f2 = s.figures(before, local_midnight(before, BJ))
    assert (f2.offered_today, f2.answered, f2.abandoned) == (3, 2, 1)


def test_window_slides_and_prunes() -> None:
    s = AnswerStats()
    s.add(Outcome(MIDNIGHT + 100, True, 1000))
    now = MIDNIGHT + 100 + 86400 + 1  # more than 24 h later, the next day
    f = s.figures(now, local_midnight(now, BJ))
    assert f.offered_24h == 0 and f.offered_today == 0 and f.completion_24h is None
    assert len(s._outcomes) == 0


def test_out_of_order_outcomes_are_kept_sorted() -> None:
    s = AnswerStats()
    s.add(Outcome(200.0, True, 1))
    s.add(Outcome(100.0, False, 2))
    assert [o.offered_at for o in s._outcomes] == [100.0, 200.0]
    f = s.figures(300.0, 0.0)
    assert f.completion_24h == 50.0 and f.pct_within_rule_today == 100.0
