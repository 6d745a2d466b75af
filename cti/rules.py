"""Seat discipline rules, checked before an action is sent (DOMAIN.md, 001). Pure.

* No sign-out and no "busy" (示忙) in the first or last 30 minutes of a shift without a
  lead's approval.
* Shift handover: the next operator signs in as the last one signs out, gap ≤ 30 s.

>>> shifts = parse_shifts(["08:00-16:00", "16:00-24:00", "00:00-08:00"])
>>> import datetime as dt
>>> from zoneinfo import ZoneInfo
>>> t = dt.datetime(2026, 11, 23, 15, 45, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
>>> d = check_seat_action("sign_out", t, shifts)
>>> d.allowed, d.needs_approval, d.reason
(False, True, 'last 30 min of shift 08:00-16:00')
>>> check_seat_action("sign_out", t, shifts, approved_by="lead01").allowed
True
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

RESTRICTED_MIN = 30
HANDOVER_MAX_S = 30.0
RESTRICTED_ACTIONS = frozenset({"sign_out", "busy"})


@dataclass(frozen=True, slots=True)
class Shift:
    """A daily window in local time; ``end <= start`` means it runs past midnight."""

    start_min: int
    end_min: int

    @property
    def length_min(self) -> int:
        return (self.end_min - self.start_min) % 1440 or 1440

    def label(self) -> str:
        def hm(m: int) -> str:
            return f"{m // 60:02d}:{m % 60:02d}"

        return f"{hm(self.start_min)}-{'24:00' if self.end_min == 1440 else hm(self.end_min % 1440)}"

    def position(self, minute_of_day: float) -> float | None:
        """Minutes since this shift started, if ``minute_of_day`` falls inside it."""
        since = (minute_of_day - self.start_min) % 1440
        return since if since < self.length_min else None


def parse_shifts(specs: list[str]) -> list[Shift]:
    """``["08:00-16:00", "22:00-06:00"]`` → shifts.

    >>> [s.label() for s in parse_shifts(["22:00-06:00", "06:00-24:00"])]
    ['22:00-06:00', '06:00-24:00']
    """
    out = []
    for spec in specs:
        a, _, b = spec.partition("-")
        h1, m1 = (int(x) for x in a.split(":"))
        h2, m2 = (int(x) for x in b.split(":"))
        out.append(Shift(h1 * 60 + m1, h2 * 60 + m2))
    return out


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    needs_approval: bool = False
    reason: str = ""
    approved_by: str = ""


def check_seat_action(
    action: str,
    now: float,
    shifts: list[Shift],
    *,
    approved_by: str | None = None,
    tz: str = "Asia/Shanghai",
    restricted_min: int = RESTRICTED_MIN,
) -> Decision:
    """May a seat do ``action`` (``sign_out``, ``busy``, ``sign_in``, ``ready``…) at ``now``?"""
    if action not in RESTRICTED_ACTIONS:
        return Decision(True)
    local = dt.datetime.fromtimestamp(now, ZoneInfo(tz))
    minute = local.hour * 60 + local.minute + local.second / 60
    for shift in shifts:
        pos = shift.position(minute)
        if pos is None:
            continue
        if pos < restricted_min:
            why = f"first {restricted_min} min of shift {shift.label()}"
        elif pos >= shift.length_min - restricted_min:
            why = f"last {restricted_min} min of shift {shift.label()}"
        else:
            continue
        if approved_by:
            return Decision(True, False, why, approved_by)
        return Decision(False, True, why)
    return Decision(True)


@dataclass(frozen=True, slots=True)
class Handover:
    """One seat signed out and another signed in: was the gap within 30 s?"""

    from_seat: str
    to_seat: str
    signed_out_at: float
    signed_in_at: float
    gap_s: float
    ok: bool


@dataclass
class HandoverTracker:
    """Pairs each sign-in with the oldest unmatched sign-out (a seat being handed over)."""

    max_gap_s: float = HANDOVER_MAX_S
    window_s: float = 600.0  # a sign-out older than this is not a handover any more
    _outs: list[tuple[str, float]] = field(default_factory=list)

    def signed_out(self, seat: str, at: float) -> None:
        self._outs.append((seat, at))

    def signed_in(self, seat: str, at: float) -> Handover | None:
        self._outs = [(s, t) for s, t in self._outs if at - t <= self.window_s]
        if not self._outs:
            return None
        from_seat, out_at = self._outs.pop(0)
        gap = max(0.0, at - out_at)
        return Handover(from_seat, seat, out_at, at, round(gap, 3), gap <= self.max_gap_s)
