"""The live transcript's legs in the database and their use after the call (recordings/live_legs.py).

A node rewrites a leg as each sentence settles: one row per call and speaker whatever the number of
writes. The post-call transcription trusts the live words only when every leg of the recording was
heard live in full; then it places them on the recording's timeline (the live audio starts
``recording length − live length`` in, both legs alike) and hears from the file only what the spy
did not (the IVR and the queue before the answer). The recording and the model are real: two
espeak-ng legs and the Korean Vosk model; the live words are written here, with times relative to
the live audio's start, so where they land is known exactly. Recognised text is never asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, func, select

from recordings import live_legs
from recordings.db import make_engine, migrate
from recordings.models import LiveLeg
from testkit.audio import two_leg_call

TOTAL_S = 18.0  # both legs of the recording, as MixMonitor leaves them
HEAD_S = 4.0  # the recording started this long before the spies (the citizen speaks in it)

# the live words, each leg's times from the start of its live audio: markers no model would say
CITIZEN_LIVE = [{"word": "LIVE-c1", "start": 3.5, "end": 4.0, "conf": 0.9},
                {"word": "LIVE-c2", "start": 9.0, "end": 9.6, "conf": 0.8}]
OPERATOR_LIVE = [{"word": "LIVE-o1", "start": 3.1, "end": 3.9, "conf": 1.0}]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # the citizen speaks in the first 4 s (the IVR), then again later; the operator only later
    return two_leg_call(tmp_path_factory.mktemp("live-legs"), "hotline-20261123-101500-1763867000.1",
                        [("sil", 0.5), ("say", "agent_ko"), ("sil", 1.0), ("say", "caller_ko")],
                        [("sil", 7.0), ("say", "agent_ko")], TOTAL_S)


def heard_live(db: sa.Engine, audio_s: float, call_id: str = "c1") -> dict[str, LiveLeg]:
    """Both legs written as a node writes them, complete, each ``audio_s`` long; read back."""
    for speaker, words in (("citizen", CITIZEN_LIVE), ("operator", OPERATOR_LIVE)):
        live_legs.save(db, call_id=call_id, speaker=speaker, seat="8001", node="listen-1", model="vosk:ko",
                       state=live_legs.COMPLETE, audio_s=audio_s,
                       lines=[{"text": " ".join(w["word"] for w in words), "start_s": words[0]["start"]}],
                       words=words)
    return live_legs.of_call(db, call_id)


def live_only(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in words if w["word"].startswith("LIVE-")]


def from_file(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in words if not w["word"].startswith("LIVE-")]


# --- save / of_call / usable -------------------------------------------------------------------


def test_saving_a_leg_again_replaces_it(db: sa.Engine) -> None:
    live_legs.save(db, call_id="c1", speaker="citizen", audio_s=1.0, lines=[{"text": "路灯"}],
                   words=[{"word": "路灯", "start": 0.1, "end": 0.5}])
    live_legs.save(db, call_id="c1", speaker="citizen", seat="8001", node="listen-1", model="vosk:cn",
                   state=live_legs.COMPLETE, audio_s=2.34567, lines=[{"text": "路灯"}, {"text": "不亮"}],
                   words=[{"word": "路灯", "start": 0.1, "end": 0.5}, {"word": "不亮", "start": 1.0, "end": 1.4}])
    with Session(db) as s:
        assert s.exec(select(func.count()).select_from(LiveLeg)).one() == 1
    leg = live_legs.of_call(db, "c1")["citizen"]
    assert (leg.seat, leg.node, leg.model, leg.state, leg.audio_s) == ("8001", "listen-1", "vosk:cn", "complete", 2.346)
    assert [ln["text"] for ln in leg.lines] == ["路灯", "不亮"]
    assert [w["word"] for w in leg.words] == ["路灯", "不亮"]


def test_a_call_has_a_row_per_speaker(db: sa.Engine) -> None:
    live_legs.save(db, call_id="c1", speaker="citizen", words=[{"word": "a", "start": 0.0, "end": 0.1}])
    live_legs.save(db, call_id="c1", speaker="operator", state=live_legs.DROPPED)
    live_legs.save(db, call_id="c2", speaker="citizen")
    legs = live_legs.of_call(db, "c1")
    assert set(legs) == {"citizen", "operator"}
    assert legs["operator"].state == live_legs.DROPPED and legs["citizen"].words[0]["word"] == "a"
    with Session(db) as s:  # the worker reads them in its own session
        assert set(live_legs.of_call(s, "c2")) == {"citizen"}
    assert live_legs.of_call(db, "c3") == {}


def test_a_transferred_call_keeps_both_operators_and_is_heard_again_from_the_file(db: sa.Engine) -> None:
    for part, seat in ((1, "8001"), (2, "8002")):
        live_legs.save(db, call_id="c1", speaker="operator", part=part, seat=seat, state=live_legs.COMPLETE,
                       lines=[{"line": 1, "text": seat, "start": 0.0, "end": 1.0}])
        live_legs.save(db, call_id="c1", speaker="operator", part=part, seat=seat, state=live_legs.COMPLETE,
                       lines=[{"line": 1, "text": seat, "start": 0.0, "end": 1.0}])  # written again: replaced
    live_legs.save(db, call_id="c1", speaker="citizen", seat="8001", state=live_legs.COMPLETE)
    legs = live_legs.legs_of(db, "c1")
    assert [(r.speaker, r.part, r.seat) for r in legs] == [("citizen", 1, "8001"), ("operator", 1, "8001"),
                                                          ("operator", 2, "8002")]
    assert live_legs.of_call(db, "c1")["operator"].seat == "8002", "by speaker: the later operator"
    assert live_legs.whole_legs(db, "c1") == {}, "two operators on one operator recording: not placed"
    live_legs.save(db, call_id="c2", speaker="citizen", state=live_legs.COMPLETE)
    assert set(live_legs.whole_legs(db, "c2")) == {"citizen"}


def test_the_live_words_are_used_only_when_every_recorded_leg_was_heard_in_full(db: sa.Engine) -> None:
    live_legs.save(db, call_id="c1", speaker="citizen", state=live_legs.COMPLETE)
    live_legs.save(db, call_id="c1", speaker="operator", state=live_legs.COMPLETE)
    live_legs.save(db, call_id="c2", speaker="citizen", state=live_legs.COMPLETE)
    live_legs.save(db, call_id="c2", speaker="operator", state=live_legs.DROPPED)
    live_legs.save(db, call_id="c3", speaker="citizen", state=live_legs.COMPLETE)
    live_legs.save(db, call_id="c3", speaker="operator", state=live_legs.LISTENING)
    c1, c2, c3 = (live_legs.of_call(db, c) for c in ("c1", "c2", "c3"))
    assert live_legs.usable(c1, ["citizen", "operator"])
    assert live_legs.usable(c1, {"citizen": b"", "operator": b""})  # the worker's legs, by name
    assert not live_legs.usable(c2, ["citizen", "operator"]), "a dropped leg"
    assert not live_legs.usable(c3, ["citizen", "operator"]), "a leg the node never finished"
    assert live_legs.usable(c2, ["citizen"]), "a recording of the citizen only (a voice message)"
    assert not live_legs.usable({"citizen": c1["citizen"]}, ["citizen", "operator"]), "a leg not heard live"
    assert not live_legs.usable(c1, []), "no leg recorded"
    assert not live_legs.usable({}, ["citizen"])


# --- words_with_live ---------------------------------------------------------------------------


def test_live_words_are_placed_on_the_recording_and_only_the_head_is_heard_again(
        db: sa.Engine, call: dict[str, Path], vosk_model: Any) -> None:
    live = heard_live(db, audio_s=TOTAL_S - HEAD_S)
    legs = {"citizen": call["citizen"].read_bytes(), "operator": call["operator"]}  # bytes as the worker reads
    words, audio_s, heard_here = live_legs.words_with_live(vosk_model, legs, live)
    assert audio_s == pytest.approx(2 * TOTAL_S)
    assert heard_here == pytest.approx(2 * HEAD_S), "each leg's first 4 s, nothing after"
    placed = [(w["speaker"], w["word"], w["start"], w["end"], w["conf"]) for w in live_only(words)]
    assert sorted(placed) == sorted(
        (speaker, w["word"], round(w["start"] + HEAD_S, 3), round(w["end"] + HEAD_S, 3), w["conf"])
        for speaker, said in (("citizen", CITIZEN_LIVE), ("operator", OPERATOR_LIVE)) for w in said)
    heard = from_file(words)
    assert heard, "the citizen spoke before the spies started: heard from the file"
    for w in heard:
        assert w["speaker"] == "citizen", "the operator's head is silence"
        assert 0.0 <= w["start"] <= w["end"] <= HEAD_S + 0.01, w
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)


def test_nothing_is_heard_again_when_the_live_audio_covers_the_recording(
        db: sa.Engine, call: dict[str, Path], vosk_model: Any) -> None:
    live = heard_live(db, audio_s=TOTAL_S)
    words, audio_s, heard_here = live_legs.words_with_live(
        vosk_model, {"citizen": call["citizen"], "operator": call["operator"]}, live)
    assert heard_here == 0.0 and audio_s == pytest.approx(2 * TOTAL_S)
    assert from_file(words) == []
    expected = [{"speaker": "citizen", **w} for w in CITIZEN_LIVE] + [{"speaker": "operator", **w}
                                                                       for w in OPERATOR_LIVE]
    assert words == sorted(expected, key=lambda w: (w["start"], w["speaker"]))


def test_a_gap_shorter_than_half_a_second_is_not_heard_again(
        db: sa.Engine, call: dict[str, Path], vosk_model: Any) -> None:
    # the spy starts ≈ 0.1 s after the answer: that much of the recording is never worth a pass
    live = heard_live(db, audio_s=TOTAL_S - 0.3)
    words, _, heard_here = live_legs.words_with_live(
        vosk_model, {"citizen": call["citizen"], "operator": call["operator"]}, live)
    assert heard_here == 0.0
    assert from_file(words) == []
    assert [w["start"] for w in words if w["speaker"] == "citizen"] == [
        pytest.approx(w["start"] + 0.3) for w in CITIZEN_LIVE]
