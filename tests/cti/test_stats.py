"""Rolling figures with an injected clock, across midnight (Beijing time)."""

from __future__ import annotations

import datetime as dt
import doctest
import random
from zoneinfo import ZoneInfo

import pytest

import cti.stats
from cti.stats import AnswerStats, Figures, Outcome, local_midnight

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


def _scan(outcomes: list[Outcome], now: float, day_start: float, rule: int) -> Figures:
    """The figures counted outcome by outcome, as they were before the counts were kept."""
    since24 = now - 86400.0
    held = sorted((o for o in outcomes if min(since24, day_start) <= o.offered_at <= now), key=lambda o: o.offered_at)
    today = [o for o in held if o.offered_at >= day_start]
    day = [o for o in held if o.offered_at >= since24]
    ans_t, ans_d = [o for o in today if o.answered], [o for o in day if o.answered]
    win_t, win_d = sum(o.wait_ms <= rule for o in ans_t), sum(o.wait_ms <= rule for o in ans_d)
    pct = lambda a, b: round(100.0 * a / b, 2) if b else None  # noqa: E731
    waits = tuple(o.wait_ms for o in day if not o.answered)
    return Figures(len(today), len(ans_t), len(today) - len(ans_t), win_t, pct(win_t, len(ans_t)), len(day),
                   len(ans_d), win_d, pct(win_d, len(ans_d)), pct(len(ans_d), len(day)), len(waits), waits,
                   round(sum(o.wait_ms for o in ans_t) / len(ans_t), 1) if ans_t else None)


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])  # the second has days of 23 and 25 h
def test_the_kept_counts_equal_a_count_of_every_outcome(zone: str) -> None:
    rnd, tz = random.Random(zone), ZoneInfo(zone)
    stats, seen = AnswerStats(rule_ms=15000), []
    t = dt.datetime(2026, 10, 30, 20, tzinfo=tz).timestamp()  # across New York's end of DST (Nov 1)
    for step in range(4000):
        t += rnd.expovariate(1 / 150)  # a call every 2.5 min on average, over about a week
        o = Outcome(offered_at=t - rnd.choice([0.0, 0.0, 0.0, rnd.uniform(0, 40)]),  # some judged late
                    answered=rnd.random() < 0.9, wait_ms=rnd.randrange(0, 40_000))
        stats.add(o)
        seen.append(o)
        if step % 7 == 0:
            now = t - rnd.choice([0.0, 0.0, 0.5])  # now and then the clock a little behind Asterisk's
            assert stats.figures(now, local_midnight(now, tz)) == _scan(seen, now, local_midnight(now, tz), 15000)
