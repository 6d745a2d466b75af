"""The IVR flows against a fake channel: closed/overflow, survey, status query, job number."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from agi.channel import AgiHangup, Recorded
from agi.flows.closed import closed, hours_said, overflow
from agi.flows.hours import ServiceHours
from agi.flows.jobno import announce
from agi.flows.status import TicketStatus, status_query
from agi.flows.survey import survey
from tests.agi.fakes import FakeChannel, Recorder, env

HOURS = ServiceHours.parse("08:00-20:30")


# --- after hours, no seat, overflow ----------------------------------------------------------


async def test_after_hours_says_the_hours_and_takes_a_callback_request() -> None:
    on_cb = Recorder()
    ch = FakeChannel(env("closed", args=("after_hours",), uniqueid="17.1"), keys=["1"])
    assert await closed(ch, on_cb, HOURS) == "callback"
    assert ch.played[: len(hours_said(HOURS)) + 1] == ["hotline/after-hours", *hours_said(HOURS)]
    assert hours_said(HOURS) == ["hotline/hours-pre", "digits/8", "hotline/hour", "hotline/to", "digits/2",
                                 "digits/10", "hotline/hour", "digits/3", "digits/10", "hotline/minute"]
    assert on_cb.calls == [("17.1", "13953012345", "after_hours", "")]
    assert ch.execs == [("UserEvent", "CallbackRequest,Uniqueid: 17.1,Caller: 13953012345,Reason: after_hours,"
                                      "Message: ")]
    assert ch.played[-1] == "hotline/callback-ok" and ch.set == {"HL_CALLBACK": "1"}


async def test_no_seat_invalid_key_then_silence_is_a_no() -> None:
    on_cb = Recorder()
    ch = FakeChannel(env("closed", args=("no_seat",)), keys=["7", ""])
    assert await closed(ch, on_cb, HOURS) == "declined"
    assert ch.played == ["hotline/no-seat", "hotline/invalid", "hotline/goodbye"]
    assert ch.prompts == ["hotline/callback-offer"] * 2 and on_cb.calls == []


@pytest.mark.parametrize("callerid", ["", "anonymous", "abc", "9" * 50])
async def test_a_withheld_number_is_not_offered_a_callback(callerid: str) -> None:
    on_cb = Recorder()
    ch = FakeChannel(env("closed", callerid=callerid, args=("whatever'; --",)), keys=["1"])
    assert await closed(ch, on_cb, HOURS) == "no_number"
    assert ch.prompts == [] and on_cb.calls == [] and ch.played == ["hotline/no-seat", "hotline/goodbye"]


async def test_hanging_up_during_the_offer_requests_nothing() -> None:
    on_cb = Recorder()
    ch = FakeChannel(env("closed", args=("after_hours",)), keys=["1"], hangup_after=1)
    with pytest.raises(AgiHangup):
        await closed(ch, on_cb, HOURS)
    assert on_cb.calls == [] and ch.set == {} and ch.execs == []


NOW = datetime(2026, 11, 23, 22, 5, 9, tzinfo=UTC)
SPOOL = "/var/spool/asterisk/monitor"


async def test_after_hours_a_caller_leaves_a_voice_message_that_lands_on_the_callback_list() -> None:
    on_cb = Recorder()
    ch = FakeChannel(env("closed", args=("after_hours",), uniqueid="1795400000.7"), keys=["1"])
    assert await closed(ch, on_cb, HOURS, messages=SPOOL, clock=lambda: NOW) == "message"
    assert ch.prompts == ["hotline/closed-offer"]  # 留言 1, 回电 2
    base = "message-20261123-220509-1795400000.7"
    assert ch.recorded == [(f"{SPOOL}/{base}-in", 120_000, 5)]  # the citizen leg of a recording
    assert on_cb.calls == [("1795400000.7", "13953012345", "after_hours", base)]
    assert ch.execs[0][1].endswith(f"Message: {base}") and ch.set == {"HL_CALLBACK": "1"}
    assert ch.played[-2:] == ["hotline/message-record", "hotline/message-ok"]


async def test_a_message_ended_by_hanging_up_is_kept_and_a_beep_alone_is_not_a_message() -> None:
    on_cb = Recorder()
    ch = FakeChannel(env("closed", args=("no_seat",), uniqueid="5.5"), keys=["1"], message=Recorded("hangup", 40_000))
    assert await closed(ch, on_cb, HOURS, messages=SPOOL, clock=lambda: NOW) == "message"
    assert on_cb.calls == [("5.5", "13953012345", "no_seat", "message-20261123-220509-5.5")]
    assert ch.execs == [] and ch.played[-1] == "hotline/message-record"  # nothing more reached the dead line
    for said in (Recorded("timeout", 4_000), Recorded("error", 0), Recorded("hangup", 0)):
        on_cb = Recorder()
        ch = FakeChannel(env("closed", args=("no_seat",)), keys=["1"], message=said)
        assert await closed(ch, on_cb, HOURS, messages=SPOOL, clock=lambda: NOW) == "no_message"
        assert on_cb.calls == []


async def test_a_withheld_number_may_leave_a_message_but_is_not_offered_a_callback() -> None:
    on_cb = Recorder()
    ch = FakeChannel(env("closed", callerid="anonymous", args=("after_hours",), uniqueid="6.6"), keys=["2", "1"])
    assert await closed(ch, on_cb, HOURS, messages=SPOOL, clock=lambda: NOW) == "message"
    assert ch.prompts == ["hotline/message-offer"] * 2  # "2" (回电) is not a choice here
    assert on_cb.calls == [("6.6", "", "after_hours", "message-20261123-220509-6.6")]


async def test_with_messages_on_2_still_asks_for_a_callback_and_silence_declines() -> None:
    on_cb = Recorder()
    ch = FakeChannel(env("closed", args=("no_seat",), uniqueid="8.8"), keys=["2"])
    assert await closed(ch, on_cb, HOURS, messages=SPOOL) == "callback"
    assert on_cb.calls == [("8.8", "13953012345", "no_seat", "")] and ch.recorded == []
    ch = FakeChannel(env("closed", args=("no_seat",)), keys=["", ""])
    assert await closed(ch, on_cb, HOURS, messages=SPOOL) == "declined" and ch.played[-1] == "hotline/goodbye"


async def test_overflow_callback_or_back_to_the_same_place() -> None:
    on_cb = Recorder()
    ch = FakeChannel(env("overflow", uniqueid="9.9"), keys=["1"])
    assert await overflow(ch, on_cb) == "callback"
    assert ch.set["HL_ROUTE"] == "callback" and on_cb.calls == [("9.9", "13953012345", "overflow", "")]
    for keys in (["2"], [""], ["5"]):
        ch = FakeChannel(env("overflow"), keys=list(keys))
        assert await overflow(ch, on_cb) == "queue"
        assert ch.set == {"HL_ROUTE": "queue"} and ch.played[-1] == "hotline/please-wait"
    ch = FakeChannel(env("overflow", callerid=""))
    assert await overflow(ch, on_cb) == "queue" and ch.prompts == []
    assert len(on_cb.calls) == 1


# --- survey ----------------------------------------------------------------------------------


@pytest.mark.parametrize("keys, score, prompts, invalid", [
    (["1"], 1, 1, 0),
    (["2"], 2, 1, 0),
    (["3"], 3, 1, 0),
    (["9", "3"], 3, 2, 1),
    (["", "", "2"], 2, 3, 0),
    (["#", "0", "*"], None, 3, 2),  # invalid three times: go on without a score
    ([], None, 3, 0),  # silence three times
])
async def test_survey_one_key_reprompted_twice(keys, score, prompts, invalid) -> None:
    on_survey = Recorder()
    ch = FakeChannel(env("survey", uniqueid="1763866000.42", callerid="13953012345"), keys=list(keys))
    assert await survey(ch, on_survey) == score
    assert ch.prompts == ["hotline/survey"] * prompts
    assert ch.played.count("hotline/invalid") == invalid
    assert on_survey.calls == [("1763866000.42", "13953012345", score)]
    assert ch.set == {"HL_SAT": str(score) if score else ""}


async def test_survey_hangup_leaves_nothing_half_written() -> None:
    on_survey = Recorder()
    ch = FakeChannel(env("survey"), keys=["9"], hangup_after=1)
    with pytest.raises(AgiHangup):
        await survey(ch, on_survey)
    assert on_survey.calls == [] and ch.set == {}


async def test_survey_from_a_withheld_number_is_still_stored_on_the_call() -> None:
    on_survey = Recorder()
    await survey(FakeChannel(env("survey", callerid="anonymous", uniqueid="5.5"), keys=["1"]), on_survey)
    assert on_survey.calls == [("5.5", "", 1)]


# --- status query ----------------------------------------------------------------------------


class Tickets:
    """Tickets known by (number, query code): a wrong code finds nothing, as an unknown number."""

    def __init__(self, *known: tuple[TicketStatus, str]) -> None:
        self.known = {(t.number, code): t for t, code in known}
        self.asked: list[tuple[str, str]] = []

    async def __call__(self, number: str, code: str) -> TicketStatus | None:
        self.asked.append((number, code))
        return self.known.get((number, code))


async def test_status_is_said_with_the_expected_date_once_number_and_code_are_right() -> None:
    find = Tickets((TicketStatus("20261120000042", "in_progress", date(2026, 12, 11)), "042917"))
    ch = FakeChannel(env("status"), keys=["20261120000042#", "042917#"])
    found = await status_query(ch, find)
    assert found is not None and found.number == "20261120000042"
    assert ch.prompts == ["hotline/status-ask", "hotline/status-code-ask"]
    assert ch.played == ["hotline/status-is", "hotline/status/in_progress", "hotline/status-due",
                         "digits/10", "digits/2", "hotline/month", "digits/10", "digits/1", "hotline/day",
                         "hotline/goodbye"]


async def test_a_wrong_code_and_an_unknown_number_sound_the_same() -> None:
    find = Tickets((TicketStatus("20261120000042", "closed", None), "042917"))
    wrong_code = FakeChannel(env("status"), keys=["20261120000042#", "111111#"], hangup_after=3)
    unknown = FakeChannel(env("status"), keys=["20261120000099#", "042917#"], hangup_after=3)
    for ch in (wrong_code, unknown):
        with pytest.raises(AgiHangup):  # the caller hangs up when asked for the number again
            await status_query(ch, find)
    assert wrong_code.prompts == unknown.prompts == ["hotline/status-ask", "hotline/status-code-ask"]
    assert wrong_code.played == unknown.played == ["hotline/status-notfound"]
    assert find.asked == [("20261120000042", "111111"), ("20261120000099", "042917")]


async def test_wrong_code_then_the_right_one_and_drafts_are_not_found() -> None:
    find = Tickets((TicketStatus("20261120000042", "closed", None), "042917"),
                   (TicketStatus("20261120000043", "draft", None), "555555"))
    ch = FakeChannel(env("status"), keys=["20261120000043", "555555", "1", "20261120000042", "042917"])
    found = await status_query(ch, find)
    assert found is not None and found.status == "closed"
    # "1" is no ticket number: no code is asked for it and nothing is looked up
    assert find.asked == [("20261120000043", "555555"), ("20261120000042", "042917")]
    assert ch.prompts == ["hotline/status-ask", "hotline/status-code-ask", "hotline/status-ask",
                          "hotline/status-ask", "hotline/status-code-ask"]
    assert ch.played == ["hotline/status-notfound", "hotline/status-notfound", "hotline/status-is",
                         "hotline/status/closed", "hotline/goodbye"]


async def test_a_number_without_a_code_is_not_looked_up() -> None:
    find = Tickets((TicketStatus("20261120000042", "closed", None), "042917"))
    ch = FakeChannel(env("status"), keys=["20261120000042#", "", "20261120000042#", "12#", "", ""])
    assert await status_query(ch, find) is None
    assert find.asked == [] and ch.played == ["hotline/status-notfound", "hotline/status-notfound",
                                              "hotline/goodbye"]


async def test_status_gives_up_after_three_tries() -> None:
    find = Tickets()
    ch = FakeChannel(env("status"), keys=["", "*", "123456789012345678901234"])
    assert await status_query(ch, find) is None
    assert ch.prompts == ["hotline/status-ask"] * 3 and find.asked == []
    assert ch.played[-1] == "hotline/goodbye"


# --- job number ------------------------------------------------------------------------------


async def test_job_number_is_announced_from_the_member_name() -> None:
    ch = FakeChannel(env("jobno"), variables={"MEMBERNAME": "8001", "MEMBERINTERFACE": "PJSIP/8001"})
    assert await announce(ch, {"8001": "007"}.get) == "007"
    assert ch.played == ["hotline/operator-pre", "digits/0", "digits/0", "digits/7", "hotline/operator-post"]
    assert ch.set == {"HL_JOBNO": "007"}


async def test_no_job_number_no_announcement() -> None:
    for variables, source in (({}, {"8001": "007"}.get), ({"MEMBERINTERFACE": "PJSIP/8002"}, {}.get),
                              ({"MEMBERNAME": "8003"}, lambda seat: "无")):
        ch = FakeChannel(env("jobno"), variables=variables)
        assert await announce(ch, source) is None
        assert ch.played == [] and ch.set == {}


async def test_a_failing_store_does_not_cut_the_caller_off(caplog) -> None:
    async def down(*args: object) -> None:
        raise OSError("database is locked")

    ch = FakeChannel(env("survey"), keys=["1"])
    assert await survey(ch, down) == 1 and ch.set == {"HL_SAT": "1"}
    ch = FakeChannel(env("closed", args=("no_seat",)), keys=["1"])
    assert await closed(ch, down, HOURS) == "callback"
    assert ch.execs and ch.played[-1] == "hotline/callback-ok"
    assert len([r for r in caplog.records if "not stored" in r.getMessage()]) == 2
