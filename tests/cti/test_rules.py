"""Shift windows (first/last 30 min), approvals, overnight shifts, handover gaps."""

from __future__ import annotations

import datetime as dt
import doctest
from zoneinfo import ZoneInfo

import pytest

import cti.rules
from cti.rules import HandoverTracker, check_seat_action, parse_shifts

BJ = ZoneInfo("Asia/Shanghai")
SHIFTS = parse_shifts(["08:00-16:00", "16:00-24:00", "00:00-08:00"])


def at(h: int, m: int, s: int = 0, day: int = 23) -> float:
    return dt.datetime(2026, 11, day, h, m, s, tzinfo=BJ).timestamp()


def test_doctests() -> None:
    assert doctest.testmod(cti.rules).failed == 0


@pytest.mark.parametrize(
    "when, allowed",
    [
        (at(8, 0), False),
        (at(8, 29, 59), False),
        (at(8, 30), True),
        (at(12, 0), True),
        (at(15, 29, 59), True),
        (at(15, 30), False),
        (at(16, 10), False),  # first 30 min of the next shift
        (at(23, 45), False),
        (at(0, 10), False),
        (at(3, 0), True),
    ],
)
@pytest.mark.parametrize("action", ["sign_out", "busy"])
def test_restricted_windows(when: float, allowed: bool, action: str) -> None:
    d = check_seat_action(action, when, SHIFTS)
    assert d.allowed is allowed
    assert d.needs_approval is (not allowed)


def test_approval_and_unrestricted_actions() -> None:
    d = check_seat_action("busy", at(8, 5), SHIFTS, approved_by="lead07")
    assert d.allowed and d.approved_by == "lead07" and "first 30 min" in d.reason
    assert check_seat_action("sign_in", at(8, 5), SHIFTS).allowed
    assert check_seat_action("ready", at(15, 55), SHIFTS).allowed


def test_overnight_shift() -> None:
    night = parse_shifts(["22:00-06:00"])
    assert not check_seat_action("sign_out", at(5, 40), night).allowed
    assert not check_seat_action("sign_out", at(22, 20), night).allowed
    assert check_seat_action("sign_out", at(1, 0), night).allowed
    assert check_seat_action("sign_out", at(12, 0), night).allowed  # outside any shift


def test_handover_gap() -> None:
    h = HandoverTracker()
    assert h.signed_in("8002", 100.0) is None  # nobody handed over
    h.signed_out("8001", 1000.0)
    ok = h.signed_in("8002", 1012.5)
    assert ok is not None and ok.ok and ok.gap_s == 12.5 and (ok.from_seat, ok.to_seat) == ("8001", "8002")
    h.signed_out("8003", 2000.0)
    late = h.signed_in("8004", 2030.5)
    assert late is not None and not late.ok and late.gap_s == 30.5
    h.signed_out("8005", 3000.0)
    assert h.signed_in("8006", 3000.0 + 601) is None  # too old to be a handover
