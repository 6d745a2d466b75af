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


class AnswerStats:
    """Outcomes of the last 24 h (and today), kept in offer order; figures on demand."""

    def __init__(self, rule_ms: int = 15000) -> None:
        self.rule_ms = rule_ms
        self._outcomes: deque[Outcome] = deque()

    def add(self, o: Outcome) -> None:
        # outcomes arrive nearly in order (a call is judged when answered or abandoned, so one
        # offered earlier may come after one offered later): kept sorted, so pruning stays O(1),
        # each put in its place (after any offered at the same moment), not the day sorted again
        q = self._outcomes
        if not q or q[-1].offered_at <= o.offered_at:
            q.append(o)
        else:
            q.insert(bisect.bisect_right(q, o.offered_at, key=_offered_at), o)

    def prune(self, now: float, day_start: float) -> None:
        horizon = min(now - DAY_S, day_start)
        q = self._outcomes
        while q and q[0].offered_at < horizon:
            q.popleft()

    def figures(self, now: float, day_start: float) -> Figures:
        self.prune(now, day_start)
        since24 = now - DAY_S
        rule = self.rule_ms
        off_t = ans_t = ab_t = win_t = 0
        wait_sum_t = 0
        off_24 = ans_24 = win_24 = 0
        ab_waits: list[int] = []
        for o in self._outcomes:
            if o.offered_at > now:
                continue
            within = o.answered and o.wait_ms <= rule
            if o.offered_at >= day_start:
                off_t += 1
                if o.answered:
                    ans_t += 1
                    wait_sum_t += o.wait_ms
                    win_t += within
                else:
                    ab_t += 1
            if o.offered_at >= since24:
                off_24 += 1
                if o.answered:
                    ans_24 += 1
                    win_24 += within
                else:
                    ab_waits.append(o.wait_ms)
        return Figures(
            offered_today=off_t,
            answered=ans_t,
            abandoned=ab_t,
            within_rule_today=win_t,
            pct_within_rule_today=_pct(win_t, ans_t),
            offered_24h=off_24,
            answered_24h=ans_24,
            within_rule_24h=win_24,
            pct_within_rule_24h=_pct(win_24, ans_24),
            completion_24h=_pct(ans_24, off_24),
            abandoned_24h=len(ab_waits),
            abandoned_waits_ms_24h=tuple(ab_waits),
            mean_wait_ms_today=round(wait_sum_t / ans_t, 1) if ans_t else None,
        )
