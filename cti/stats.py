"""Rolling answer figures: the 15 s rule and the 24 h completion rate. Pure; no clock of its own.

Each resolved call (answered or abandoned) is one :class:`Outcome`, filed under the time it was
**offered**. Calls still waiting are not counted yet (they have no outcome).

>>> s = AnswerStats(rule_ms=15000)
>>> s.add(Outcome(offered_at=100.0, answered=True, wait_ms=3000))
>>> s.add(Outcome(offered_at=110.0, answered=False, wait_ms=40000))
>>> f = s.figures(now=200.0, day_start=0.0)
>>> f.answered, f.abandoned, f.completion_24h, f.pct_within_rule_today
(1, 1, 50.0, 100.0)
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import deque
from dataclasses import dataclass
from zoneinfo import ZoneInfo

DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class Outcome:
    offered_at: float
    answered: bool
    wait_ms: int


@dataclass(frozen=True, slots=True)
class Figures:
    """``answered``/``abandoned``/``within_rule`` count today's calls (local midnight)."""

    offered_today: int
    answered: int
    abandoned: int
    within_rule_today: int
    pct_within_rule_today: float | None  # answered within the rule / answered, in %
    offered_24h: int
    answered_24h: int
    within_rule_24h: int
    pct_within_rule_24h: float | None
    completion_24h: float | None  # answered / offered over 24 h, in % (target ≥ 95)
    abandoned_24h: int
    abandoned_waits_ms_24h: tuple[int, ...]
    mean_wait_ms_today: float | None


def _pct(a: int, b: int) -> float | None:
    return round(100.0 * a / b, 2) if b else None


def local_midnight(now: float, tz: ZoneInfo) -> float:
    """Epoch of the last local midnight before ``now``.

    >>> from zoneinfo import ZoneInfo
    >>> midnight = 1795363200.0  # 2026-11-23 00:00 in Beijing
    >>> local_midnight(midnight + 3600, ZoneInfo("Asia/Shanghai")) - midnight
    0.0
    >>> local_midnight(midnight - 1, ZoneInfo("Asia/Shanghai")) - midnight
    -86400.0
    """
    d = dt.datetime.fromtimestamp(now, tz).date()
    return dt.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()


def _offered_at(o: Outcome) -> float:
    return o.offered_at


@dataclass(slots=True)
class _Tally:
    """Counts over a set of outcomes, kept as outcomes come and go (not recounted per figure)."""

    offered: int = 0
    answered: int = 0
    within: int = 0
    wait_sum: int = 0  # of the answered

    def count(self, o: Outcome, rule_ms: int, sign: int = 1) -> None:
        self.offered += sign
        if o.answered:
            self.answered += sign
            self.wait_sum += sign * o.wait_ms
            self.within += sign * (o.wait_ms <= rule_ms)

    def copy(self) -> _Tally:
        return _Tally(self.offered, self.answered, self.within, self.wait_sum)


class AnswerStats:
    """Outcomes of the last 24 h (and today), kept in offer order, with their counts kept as they
    come and go: the figures are asked for every live picture (twice a second per queue, issue #15),
    and a 500-seat centre's day is tens of thousands of calls, each counted again every time."""

    def __init__(self, rule_ms: int = 15000) -> None:
        self.rule_ms = rule_ms
        self._outcomes: deque[Outcome] = deque()
        self._abandoned: deque[Outcome] = deque()  # the same, abandoned ones only (their waits are listed)
        self._all = _Tally()  # every outcome held
        self._today = _Tally()  # those offered since _today_start
        self._today_start: float | None = None

    def add(self, o: Outcome) -> None:
        # outcomes arrive nearly in order (a call is judged when answered or abandoned, so one
        # offered earlier may come after one offered later): kept sorted, so pruning stays O(1),
        # each put in its place (after any offered at the same moment), not the day sorted again
        _insert(self._outcomes, o)
        if not o.answered:
            _insert(self._abandoned, o)
        self._all.count(o, self.rule_ms)
        if self._today_start is not None and o.offered_at >= self._today_start:
            self._today.count(o, self.rule_ms)

    def prune(self, now: float, day_start: float) -> None:
        horizon = min(now - DAY_S, day_start)
        q = self._outcomes
        while q and q[0].offered_at < horizon:
            gone = q.popleft()
            self._all.count(gone, self.rule_ms, -1)
            if self._today_start is not None and gone.offered_at >= self._today_start:
                self._today.count(gone, self.rule_ms, -1)
        while self._abandoned and self._abandoned[0].offered_at < horizon:
            self._abandoned.popleft()

    def figures(self, now: float, day_start: float) -> Figures:
        self.prune(now, day_start)
        if self._today_start != day_start:  # a new day (or the first figures): today's counts once
            self._today_start, self._today = day_start, _Tally()
            for o in reversed(self._outcomes):
                if o.offered_at < day_start:
                    break
                self._today.count(o, self.rule_ms)
        since24 = now - DAY_S
        rule = self.rule_ms
        today, day = self._today.copy(), self._all.copy()
        for o in self._outcomes:  # held but older than 24 h: only on a day of 25 hours (DST)
            if o.offered_at >= since24:
                break
            day.count(o, rule, -1)
        for o in reversed(self._outcomes):  # offered after ``now`` (a clock a little behind Asterisk's)
            if o.offered_at <= now:
                break
            day.count(o, rule, -1)
            if o.offered_at >= day_start:
                today.count(o, rule, -1)
        ab_waits = tuple(o.wait_ms for o in self._abandoned if since24 <= o.offered_at <= now)
        return Figures(
            offered_today=today.offered,
            answered=today.answered,
            abandoned=today.offered - today.answered,
            within_rule_today=today.within,
            pct_within_rule_today=_pct(today.within, today.answered),
            offered_24h=day.offered,
            answered_24h=day.answered,
            within_rule_24h=day.within,
            pct_within_rule_24h=_pct(day.within, day.answered),
            completion_24h=_pct(day.answered, day.offered),
            abandoned_24h=len(ab_waits),
            abandoned_waits_ms_24h=ab_waits,
            mean_wait_ms_today=round(today.wait_sum / today.answered, 1) if today.answered else None,
        )


def _insert(q: deque[Outcome], o: Outcome) -> None:
    if not q or q[-1].offered_at <= o.offered_at:
        q.append(o)
    else:
        q.insert(bisect.bisect_right(q, o.offered_at, key=_offered_at), o)
