"""The pre-queue lookup against a fake channel: rules, failures, bad numbers, hang-up."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from agi.channel import AgiHangup
from agi.flows.hours import ServiceHours
from agi.flows.lookup import LookupConfig, channel_variables, decide, lookup
from tests.agi.fakes import FakeChannel, env
from ticketing.schemas import CallerSummary, RecentTicket

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CFG = LookupConfig(hours=ServiceHours.parse("08:00-20:00"), repeat_days=7, overflow_wait_s=90,
                   elderly=frozenset({"05305551234"}))


def ticket(days_ago: float, state: str = "green", status: str = "in_progress", n: int = 1) -> RecentTicket:
    return RecentTicket(n, f"2026111{n}00000{n}", status, "办理中", "求助", "停水",
                        NOW - timedelta(days=days_ago), state)


def summary(*recent: RecentTicket, blacklisted: bool = False, vip: bool = False,
            number: str = "13953012345") -> CallerSummary:
    return CallerSummary(number=number, location="山东省菏泽市", blacklisted=blacklisted, vip=vip,
                         total=len(recent) + 4, open=len(recent), recent_30d=len(recent), repeat=bool(recent),
                         recent=list(recent))


def test_a_first_time_caller_goes_to_the_queue_with_the_screen_pop_variables() -> None:
    d = decide(summary(), "13953012345", CFG, NOW, seats_logged=3)
    assert d["HL_ROUTE"] == "queue" and d["HL_PRIORITY"] == "0" and d["HL_REPEAT"] == "0"
    assert d["HL_LOCATION"] == "山东省菏泽市" and d["HL_TICKETS"] == "4" and d["HL_FLAGS"] == ""
    assert d["HL_QTIMEOUT"] == "90"
    v = channel_variables(d)
    assert v["__HL_LOCATION"] == "山东省菏泽市" and v["HL_ROUTE"] == "queue" and "__HL_ROUTE" not in v


@pytest.mark.parametrize("recent, flags, priority", [
    ((ticket(2),), "repeat", "3"),
    ((ticket(10),), "", "0"),  # outside the 7-day window
    ((ticket(2, "red", n=1), ticket(20, n=2)), "repeat,overdue", "10"),
    ((ticket(20, "red"),), "overdue", "0"),  # overdue but not calling again recently
    ((ticket(2, "red", status="closed"),), "repeat", "3"),  # closed tickets are never overdue
])
def test_repeat_and_overdue(recent, flags, priority) -> None:
    d = decide(summary(*recent), "13953012345", CFG, NOW, seats_logged=1)
    assert (d["HL_FLAGS"], d["HL_PRIORITY"]) == (flags, priority)
    first = d["HL_RECENT"].split(",")[0].split(":")
    assert first == [recent[0].number, recent[0].deadline_state, "办理中", "求助", "停水"]  # what the pop shows


def test_elderly_and_vip_go_ahead_blacklisted_are_warned_and_never_ahead() -> None:
    assert decide(summary(number="05305551234"), "05305551234", CFG, NOW, 1)["HL_PRIORITY"] == "10"
    vip = decide(summary(vip=True), "13953012345", CFG, NOW, 1)
    assert (vip["HL_FLAGS"], vip["HL_PRIORITY"]) == ("vip", "5")
    bad = decide(summary(ticket(1), blacklisted=True), "13953012345", CFG, NOW, 1)
    assert (bad["HL_ROUTE"], bad["HL_PRIORITY"], bad["HL_FLAGS"]) == ("harass", "0", "blacklist,repeat")
    reject = LookupConfig(blacklist="reject")
    assert decide(summary(blacklisted=True), "1", reject, NOW, 1)["HL_ROUTE"] == "reject"
    ignore = LookupConfig(blacklist="ignore")
    assert decide(summary(blacklisted=True), "1", ignore, NOW, 1)["HL_ROUTE"] == "queue"


def test_a_number_a_lead_marked_elderly_goes_ahead_like_one_in_the_settings() -> None:
    flagged = CallerSummary(number="13953012345", location="", blacklisted=False, vip=False, total=0, open=0,
                            recent_30d=0, repeat=False, recent=[], elderly=True)
    d = decide(flagged, "13953012345", CFG, NOW, 1)
    assert (d["HL_FLAGS"], d["HL_PRIORITY"]) == ("elderly", "10")


def test_after_hours_and_no_seat_close_the_door_with_a_reason() -> None:
    night = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 21:00 in Shanghai
    assert decide(None, "", CFG, night, 3)["HL_REASON"] == "after_hours"
    d = decide(summary(), "13953012345", CFG, NOW, seats_logged=0)
    assert (d["HL_ROUTE"], d["HL_REASON"]) == ("closed", "no_seat")
    assert decide(None, "", CFG, NOW, seats_logged=None)["HL_ROUTE"] == "queue"  # unknown: assume some
    harassing_at_night = decide(summary(blacklisted=True), "1", CFG, night, 1)
    assert harassing_at_night["HL_ROUTE"] == "closed"


async def test_the_flow_sets_everything_in_one_batch() -> None:
    asked: list[str] = []

    async def summarize(number: str) -> CallerSummary:
        asked.append(number)
        return summary(ticket(1))

    ch = FakeChannel(env(callerid="+86 139-5301-2345"), variables={"HL_SEATS": "2"})
    await lookup(ch, summarize, CFG, clock=lambda: NOW)
    assert asked == ["13953012345"]
    assert ch.commands == 2  # one GET for the seats, one batch of SETs
    assert ch.set["__HL_REPEAT"] == "1" and ch.set["HL_QTIMEOUT"] == "90"
    assert "HL_LOOKUP" not in ch.set and "HL_ROUTE" not in ch.set  # ok and queue are the dialplan's defaults


@pytest.mark.parametrize("callerid", ["", "anonymous", "abc", "1" * 60, "'; DROP TABLE caller;--", "110"])
async def test_withheld_or_absurd_numbers_are_not_looked_up(callerid: str) -> None:
    async def summarize(number: str) -> CallerSummary:
        raise AssertionError("no lookup for " + number)

    ch = FakeChannel(env(callerid=callerid, calleridname='Robert"); DROP TABLE ticket;--'),
                     variables={"HL_SEATS": "1"})
    d = await lookup(ch, summarize, CFG, clock=lambda: NOW)
    assert d["HL_LOOKUP"] == "unknown_number" and d["HL_ROUTE"] == "queue"
    assert "__HL_LOCATION" not in ch.set


async def test_a_slow_or_broken_store_never_holds_the_caller(caplog) -> None:
    caplog.set_level(logging.WARNING)

    async def slow(number: str) -> CallerSummary:
        await asyncio.sleep(5)
        raise AssertionError

    async def broken(number: str) -> CallerSummary:
        raise OSError("database is locked")

    fast = LookupConfig(timeout_s=0.05)
    for fn, status in ((slow, "timeout"), (broken, "failed")):
        ch = FakeChannel(variables={"HL_SEATS": "1"})
        t0 = asyncio.get_running_loop().time()
        d = await lookup(ch, fn, fast, clock=lambda: NOW)
        assert asyncio.get_running_loop().time() - t0 < 1
        assert d["HL_LOOKUP"] == status and d["HL_ROUTE"] == "queue"
        assert not [k for k in ch.set if k.startswith("__")]  # empty variables
        assert ch.set["HL_LOOKUP"] == status  # the failure is visible on the channel too
    assert any("lookup timeout" in r.getMessage() for r in caplog.records)
    assert any("database is locked" in r.getMessage() for r in caplog.records)


async def test_a_hangup_during_the_lookup_writes_nothing_and_cancels_the_query() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def summarize(number: str) -> CallerSummary:
        started.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError

    ch = FakeChannel(hangup_after=0)
    with pytest.raises(AgiHangup):
        await lookup(ch, summarize, CFG, clock=lambda: NOW)
    await asyncio.sleep(0)
    assert ch.set == {} and (cancelled.is_set() or not started.is_set())
