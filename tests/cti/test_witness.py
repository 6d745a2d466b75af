"""Asterisk's own records (CEL lines recorded from our Asterisk 22) rebuilt into finished calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.witness import CelEvent, Witness, compare, parse
from hotline.calls import FinishedCall

CEL = Path(__file__).resolve().parents[1] / "fixtures" / "cel"
ANSWERED, ABANDONED = "13953018801", "13953018802"


def witness(name: str, drop=lambda line: False) -> Witness:
    w = Witness(rule_s=15)
    w.feed_lines(line for line in (CEL / name).read_bytes().splitlines() if not drop(line))
    return w


def by_caller(calls: list[FinishedCall]) -> dict[str, FinishedCall]:
    return {c.caller_num: c for c in calls}


def test_a_call_answered_and_one_abandoned_while_the_bridge_was_down() -> None:
    calls = by_caller(witness("bridge_down.json").finished(ended_before=2e9))
    answered, abandoned = calls[ANSWERED], calls[ABANDONED]
    assert answered.reconstructed and abandoned.reconstructed
    assert answered.queue == "hotline" and answered.seat == "8001" and answered.seats_rung == ("8001",)
    # the seat picked up after its 2 s ring (its own ANSWER), before the job-number announcement
    assert 1800 <= answered.wait_ms <= 3000 and answered.within_rule and not answered.abandoned
    assert answered.answered_at - answered.offered_at == pytest.approx(answered.wait_ms / 1000, abs=0.001)
    assert 5 <= answered.talk_s <= 9 and answered.ended_at > answered.answered_at + answered.talk_s - 0.01
    assert answered.recording_base.endswith(answered.call_id)
    assert answered.recordings == tuple(f"{answered.recording_base}{s}.wav" for s in ("", "-in", "-out"))
    assert abandoned.abandoned and not abandoned.answered and not abandoned.lost and abandoned.seat == ""
    assert 3000 <= abandoned.wait_ms <= 4500 and not abandoned.within_rule and abandoned.recordings == ()


def test_calls_cut_by_an_asterisk_restart_are_lost_not_abandoned() -> None:
    calls = witness("asterisk_restart.json").finished(ended_before=2e9)
    assert len(calls) == 6  # simulated callers: the Local channel's ;2 half is the call
    assert all(c.lost and not c.abandoned and c.wait_ms is None for c in calls)
    assert all(c.caller_num.startswith("139000000") for c in calls)
    assert len({c.call_id for c in calls}) == 6 and all(not c.seats_rung for c in calls)  # no ;1 halves


def test_a_call_asterisk_never_saw_end_is_unfinished_until_closed_as_lost() -> None:
    w = witness("bridge_down.json", drop=lambda line: b'"HANGUP"' in line and b"trunk-in-00000000" in line)
    assert set(by_caller(w.finished(2e9))) == {ABANDONED}
    (uid,) = w.unfinished(started_before=2e9)
    assert w.unfinished(started_before=0) == []
    lost = w.rebuild_unfinished(uid)
    assert lost is not None and lost.lost and lost.caller_num == ANSWERED and lost.reconstructed
    assert lost.answered and lost.seat == "8001"  # what Asterisk did record is kept


def test_finished_respects_the_window_and_forget_drops_old_calls() -> None:
    w = witness("bridge_down.json")
    ends = sorted(c.ended_at for c in w.finished(2e9))
    assert len(w.finished(ended_before=ends[0])) == 0
    assert len(w.finished(ended_before=2e9, ended_after=ends[0] + 0.001)) == 1
    assert len(w) == 2 and w.forget(before=ends[-1] + 1) == 2 and len(w) == 0


@pytest.mark.parametrize("line", [b"", b"{", b"[]", b'{"eventtype":"HANGUP"}', b"not json",
                                  b'{"eventtype":"X","eventtime":"soon","uniqueid":"1","linkedid":"1"}',
                                  '{"eventtype":"ANSWER","eventtime":1.5,"uniqueid":"','\udcff'])
def test_a_torn_or_foreign_line_is_no_event(line) -> None:
    assert parse(line) is None


def test_malformed_lines_are_counted_and_the_rest_still_read() -> None:
    lines = (CEL / "bridge_down.json").read_bytes().splitlines()
    w = Witness()
    w.feed_lines([b"garbage", *lines[:5], lines[5][:30], *lines[5:], b"   "])
    assert w.malformed == 2 and len(w.finished(2e9)) == 2


def test_hangup_and_mark_extras_are_read() -> None:
    mark = parse(b'{"eventtype":"HL_CALL","eventtime":1.0,"uniqueid":"1.1","linkedid":"1.1","eventextra":'
                 b'"{\\"extra\\":\\"hotline-x-1.1\\"}"}')
    cut = parse(b'{"eventtype":"HANGUP","eventtime":2.0,"uniqueid":"1.1","linkedid":"1.1","eventextra":'
                b'"{\\"hangupcause\\":0,\\"hangupsource\\":\\"\\"}"}')
    bye = parse(b'{"eventtype":"HANGUP","eventtime":2.0,"uniqueid":"1.1","linkedid":"1.1","eventextra":"oops"}')
    assert isinstance(mark, CelEvent) and mark.extra == "hotline-x-1.1"
    assert cut is not None and cut.extra == "" and bye is not None and bye.extra == ""


def _call(uid: str, **kw) -> FinishedCall:
    return FinishedCall(call_id=uid, caller_num="1", offered_at=1.0, ended_at=2.0, **kw)


def test_compare_names_each_kind_of_difference() -> None:
    theirs = [_call("a", answered_at=1.5), _call("b"), _call("c", answered_at=1.5), _call("d")]
    ours = [_call("a", answered_at=1.5), _call("c"), _call("d", lost=True), _call("e"), _call("f", lost=True)]
    diff = compare(theirs, ours)
    assert diff.checked == 4 and diff.missing == ("b",) and diff.unknown_to_asterisk == ("e",)
    assert diff.outcome_differs == ("c",) and diff.lost_but_finished == ("d",) and diff.count == 4
    assert compare(theirs, theirs).count == 0


def test_the_bridges_report_beats_a_reconstruction_and_a_finished_call_beats_lost() -> None:
    seen, rebuilt = _call("a", seat="8001"), _call("a", seat="8001", reconstructed=True)
    lost = _call("a", lost=True)
    assert rebuilt.yields_to(seen) and not seen.yields_to(rebuilt)
    assert lost.yields_to(rebuilt) and not rebuilt.yields_to(lost)
    assert not seen.yields_to(lost) and not lost.yields_to(seen)  # the bridge's later word stands
