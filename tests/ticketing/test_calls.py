"""The call log and the callback list, on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest

from hotline.calls import FinishedCall
from testkit.concurrent import at_once
from tests.ticketing.conftest import intake
from ticketing.calls import CallLog
from ticketing.models import TicketEvent

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def entry(uid: str, number: str = "13953012345", minutes: float = 0, **over) -> FinishedCall:
    t = (NOW + timedelta(minutes=minutes)).timestamp()
    fields = dict(call_id=uid, caller_num=number, offered_at=t, ended_at=t + 60, queue="hotline",
                  seats_rung=("8001",), seat="8001", operator="op1024", answered_at=t + 4, wait_ms=4000,
                  within_rule=True, talk_s=55.0, recordings=("hotline-x.wav", "hotline-x-in.wav", "hotline-x-out.wav"))
    fields.update(over)
    return FinishedCall(**fields)


@pytest.fixture
def calls(engine) -> CallLog:
    return CallLog(engine)


def test_a_finished_call_is_stored_with_its_figures_and_location(calls: CallLog) -> None:
    calls.record(entry("1.1"))
    [row] = calls.list(number="+86 139-5301-2345")
    assert row["location"] == "山东省菏泽市" and row["wait_s"] == 4.0 and row["within_15s"] is True
    assert row["offered"] == NOW.isoformat() and row["talk_s"] == 55.0 and row["operator"] == "op1024"
    assert row["recordings"] == ["hotline-x.wav", "hotline-x-in.wav", "hotline-x-out.wav"]
    assert row["hold_s"] == 0.0
    calls.record(entry("1.1", talk_s=56.0, hold_s=12.25))  # the same call again: updated, not doubled
    assert [(r["talk_s"], r["hold_s"]) for r in calls.list()] == [(56.0, 12.2)]
    assert [e.hold_s for e in calls.recent(NOW)] == [12.25]


def test_survey_before_the_call_ends_is_kept_and_lands_on_the_ticket(calls: CallLog, svc, people) -> None:
    ticket = svc.tickets.create(intake(caller_number="13953012345"), people.operator)
    calls.link_ticket("2.1", ticket.id)
    calls.record_survey("2.1", 3, "13953012345")
    calls.record_survey("2.1", 7, "13953012345")  # a key that means nothing changes nothing
    calls.record(entry("2.1"))  # the bridge reports the call after the survey
    [row] = calls.list()
    assert row["survey"] == 3 and row["survey_label"] == "不满意" and row["ticket_id"] == ticket.id
    from sqlmodel import Session, select

    with Session(calls.engine) as s:
        notes = [e.note for e in s.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))]
    assert "来电满意度评价：不满意" in notes


def test_callback_list_holds_abandoned_calls_and_requests_until_done(calls: CallLog) -> None:
    calls.record(entry("3.1", "13805311234", minutes=0, seat="", operator="", answered_at=None, wait_ms=21000,
                       within_rule=False, talk_s=0.0, abandoned=True, recordings=()))
    calls.record(entry("3.2", "05305123456", minutes=1, seat="", answered_at=None, abandoned=True, recordings=()))
    calls.record(entry("3.3", "05305123456", minutes=5))  # that number got through later
    calls.request_callback("3.4", "13910012345", "after_hours")
    calls.record(entry("3.5", minutes=2, lost=True, abandoned=False, answered_at=None))  # cut by a restart
    listed = calls.callbacks(now=NOW + timedelta(hours=1))
    assert [c["id"] for c in listed[:2]] == ["3.1", "3.2"] and {c["id"] for c in listed} == {"3.1", "3.2", "3.4"}
    by_id = {c["id"]: c for c in listed}
    assert by_id["3.2"]["answered_later"] is True and by_id["3.1"]["answered_later"] is False
    assert by_id["3.4"]["callback_requested"] is True
    done = calls.mark_called_back("3.1", "op1025", "已回电，市民反映的问题已登记")
    assert done["called_back_by"] == "op1025"
    again = calls.mark_called_back("3.1", "op1026")  # a second click, or a retried request
    assert again["called_back_by"] == "op1025" and again["called_back_at"] == done["called_back_at"]
    assert again["callback_note"] == "已回电，市民反映的问题已登记"
    assert "3.1" not in {c["id"] for c in calls.callbacks(now=NOW + timedelta(hours=1))}
    assert "3.1" in {c["id"] for c in calls.callbacks(include_done=True, now=NOW + timedelta(hours=1))}
    with pytest.raises(LookupError):
        calls.mark_called_back("nope", "op1025")


def test_recent_calls_rebuild_the_bridge_figures(calls: CallLog) -> None:
    calls.record(entry("4.1", minutes=0))
    calls.record(entry("4.2", minutes=30, abandoned=True, answered_at=None, within_rule=False))
    got = calls.recent(NOW)
    assert [e.call_id for e in got] == ["4.1", "4.2"]
    assert got[1].abandoned and got[0].answered_at == pytest.approx((NOW + timedelta(seconds=4)).timestamp())


def test_the_survey_and_the_finished_call_arriving_together_are_one_row_with_both(calls: CallLog) -> None:
    """The caller presses a key and hangs up: the FastAGI stores the survey while the bridge files the
    call. Each writer may read no row and insert one; the loser must update, not fail (a lost survey,
    a call sent back to the outbox)."""
    errors: list[BaseException] = []
    for n in range(6):  # the race is the scheduler's: several chances
        uid = f"9.{n}"

        def write(kind: int, uid: str = uid) -> None:
            try:
                calls.record(entry(uid)) if kind % 2 else calls.record_survey(uid, 1)
            except BaseException as exc:
                errors.append(exc)

        at_once(*(functools.partial(write, k) for k in range(6)))
        [row] = [r for r in calls.list() if r["id"] == uid]
        assert row["survey"] == 1 and row["talk_s"] == 55.0
    assert errors == []
