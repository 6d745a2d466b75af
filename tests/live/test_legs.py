"""One leg's recognition in its own thread (live/legs.py), on a scripted fake engine.

The fake stream answers each ``accept`` with the next scripted :class:`Heard` and moves a clock on
by 0.25 s, the audio time a step stands for (so throttling by ``partial_every_s`` is deterministic);
an :class:`threading.Event` can hold it, so audio piles up as behind a recogniser that cannot keep
up. Checked: what reaches ``emit`` (finals numbered from 1, partials only when their text changed
and at most every ``partial_every_s``, the last words said by ``finish``), a leg that falls more
than ``max_lag_s`` behind is dropped and ``feed`` says so, a broken engine stops its leg only and
never raises into the event loop, and ``complete`` / ``heard_s`` tell the post-call transcription
whether the leg was recognised in full.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import pytest

from live.engine import Heard
from live.legs import Leg, LegRecogniser

RATE = 8000
FRAME = bytes(RATE // 50 * 2)  # 20 ms of 8 kHz slin, as Asterisk sends a spy channel
STEP = 10  # frames per accept: step_s 0.2 s
LEG = Leg(id="6f1c2a4e-8b3d-4e5f-9a0b-1c2d3e4f5a6b", call_id="c1", seat="8001", speaker="citizen")
JOIN_S = 10.0


def P(text: str) -> Heard:
    return Heard(text, final=False)


def F(text: str) -> Heard:
    return Heard(text, final=True, start_s=0.5, end_s=1.0, words=({"word": text, "start": 0.5, "end": 1.0},))


class FakeStream:
    def __init__(self, script: Iterable[Heard | None] = (), last: Heard | None = None,
                 gate: threading.Event | None = None, fail: Exception | None = None) -> None:
        self.script = list(script)
        self.last, self.gate, self.fail = last, gate, fail
        self.now = 100.0  # the clock the recogniser is given: audio time, moved on by each step
        self.taken: list[int] = []
        self.finished = False
        self.closed = False  # given back to the engine
        self.cut_at: list[int] = []  # the step (1-based) after which the recogniser asked for a cut
        self.on_cut: list[Heard | None] = []  # what each cut says, in turn

    def accept(self, pcm: bytes) -> Heard | None:
        if self.gate is not None:
            assert self.gate.wait(JOIN_S), "the test never let the stream go"
        if self.fail is not None:
            raise self.fail
        self.taken.append(len(pcm))
        self.now += 0.25
        return self.script.pop(0) if self.script else None

    def cut(self) -> Heard | None:
        self.cut_at.append(len(self.taken))
        return self.on_cut.pop(0) if self.on_cut else None

    def finish(self) -> Heard | None:
        self.finished = True
        return self.last

    def close(self) -> None:
        self.closed = True


class FakeEngine:
    name = "fake"

    def __init__(self, stream: FakeStream, fail: Exception | None = None) -> None:
        self.stream, self.fail = stream, fail
        self.rates: list[int] = []

    def open(self, rate: int) -> FakeStream:
        if self.fail is not None:
            raise self.fail
        self.rates.append(rate)
        return self.stream


class Said:
    """What ``emit`` was called with, from the recogniser's thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[Leg, Heard, int]] = []

    def __call__(self, leg: Leg, heard: Heard, line: int) -> None:
        self.calls.append((leg, heard, line))

    def lines(self) -> list[tuple[bool, str, int]]:
        return [(h.final, h.text, n) for _, h, n in self.calls]


def recogniser(stream: FakeStream, said: Said, engine: FakeEngine | None = None, **kw: float) -> LegRecogniser:
    return LegRecogniser(LEG, engine or FakeEngine(stream), RATE, said, step_s=0.2,
                         clock=lambda: stream.now, **kw)  # type: ignore[arg-type]


def run(rec: LegRecogniser, frames: int | list[bytes]) -> None:
    for frame in [FRAME] * frames if isinstance(frames, int) else frames:
        assert rec.feed(frame)
    rec.close()
    assert rec.join(JOIN_S)


def spoken(seconds: float) -> list[bytes]:
    """20 ms frames of a loud square wave (-6 dBFS): a voice to live.endpoint."""
    loud = (b"\x00\x40" * 10 + b"\x00\xc0" * 10) * (len(FRAME) // 40)
    return [loud] * round(seconds / 0.02)


def quiet(seconds: float) -> list[bytes]:
    return [FRAME] * round(seconds / 0.02)


def test_finals_are_numbered_and_partials_said_when_changed_and_not_too_often() -> None:
    # one entry per 0.2 s step; the clock reads 100.25, 100.5, … at steps 1, 2, …
    stream = FakeStream([P("路"),         # 100.25: the first partial, at once
                         P("路灯"),       # 100.5: changed, but 0.25 s after the last one: held back
                         P("路灯"),       # 100.75: 0.5 s on, and not yet said: said now
                         P("路灯"),       # 101.0: unchanged
                         P("路灯"),       # 101.25: 0.5 s on, but unchanged: nothing new to say
                         F("路灯不亮"),   # 101.5: the sentence ended
                         None,
                         P("请"),         # 102.0: the next line's draft
                         F("请快修")],    # 102.25
                        last=F("谢谢"))
    said = Said()
    rec = recogniser(stream, said, partial_every_s=0.5)
    run(rec, 9 * STEP)
    assert said.lines() == [(False, "路", 1), (False, "路灯", 1), (True, "路灯不亮", 1),
                            (False, "请", 2), (True, "请快修", 2), (True, "谢谢", 3)]
    assert all(leg == LEG for leg, _, _ in said.calls)
    assert rec.lines == 3
    assert stream.taken == [STEP * len(FRAME)] * 9, "audio taken in 0.2 s steps"
    assert rec.complete
    assert stream.finished and stream.closed, "finished, then given back to the engine"


def test_the_stream_is_opened_at_the_legs_rate() -> None:
    stream = FakeStream()
    engine = FakeEngine(stream)
    run(LegRecogniser(LEG, engine, 16000, Said()), 0)
    assert engine.rates == [16000]


def test_close_then_join_says_what_finish_still_heard() -> None:
    stream = FakeStream([F("第一句")], last=F("最后一句"))
    said = Said()
    rec = recogniser(stream, said)
    run(rec, 2 * STEP)
    assert stream.finished
    assert said.lines() == [(True, "第一句", 1), (True, "最后一句", 2)]


def test_a_leg_that_falls_behind_is_dropped_and_feed_says_so() -> None:
    gate = threading.Event()
    stream = FakeStream([F("先说的")], last=F("不会再说"), gate=gate)
    said = Said()
    rec = recogniser(stream, said, max_lag_s=0.5)
    try:
        # the stream holds its first 0.2 s: everything fed piles up; 25 frames are exactly 0.5 s
        fed = [rec.feed(FRAME) for _ in range(40)]
        assert fed == [True] * 25 + [False] * 15
        assert rec.dropped and rec.lag_s > 0.5
    finally:
        gate.set()
    rec.close()
    assert rec.join(JOIN_S)
    assert not rec.complete and not rec.error
    assert said.lines() == [(True, "先说的", 1)], "the words so far are kept, nothing more is said"
    assert not rec.feed(FRAME)
    assert stream.closed and not stream.finished, "given back to the engine unfinished: it resets it"


def test_a_recogniser_that_keeps_up_is_never_dropped() -> None:
    stream = FakeStream()
    rec = recogniser(stream, Said(), max_lag_s=0.5)
    for _ in range(100):  # 20 s of audio, far beyond max_lag_s in all, a step at a time as it is heard
        assert all(rec.feed(FRAME) for _ in range(STEP))
        deadline = time.monotonic() + JOIN_S
        while rec.lag_s > 0:
            assert time.monotonic() < deadline, "the step was never taken"
            time.sleep(0.001)
    rec.close()
    assert rec.join(JOIN_S)
    assert not rec.dropped and rec.complete
    assert rec.heard_s == pytest.approx(20.0)


@pytest.mark.parametrize("where", ["open", "accept"])
def test_a_broken_engine_drops_its_leg_and_never_raises_into_the_caller(where: str) -> None:
    broken = RuntimeError("model file damaged")
    stream = FakeStream(fail=broken if where == "accept" else None)
    engine = FakeEngine(stream, fail=broken if where == "open" else None)
    rec = recogniser(stream, Said(), engine)
    for _ in range(STEP):
        rec.feed(FRAME)  # the failure happens in the thread; feeding never raises
    assert rec.join(JOIN_S), "the thread ends by itself"
    assert rec.dropped and not rec.complete
    assert rec.error == "RuntimeError: model file damaged"
    assert rec.feed(FRAME) is False
    rec.close()
    assert not stream.closed, "a stream that failed is not given back for another leg"


def test_complete_only_once_the_whole_leg_was_recognised() -> None:
    gate = threading.Event()
    stream = FakeStream(gate=gate)
    rec = recogniser(stream, Said())
    try:
        for _ in range(STEP):
            assert rec.feed(FRAME)
        assert not rec.complete, "still listening"
        rec.close()
        assert not rec.complete, "closed, but audio is still being recognised"
    finally:
        gate.set()
    assert rec.join(JOIN_S)
    assert rec.complete


def test_heard_s_is_the_audio_fed_a_last_short_step_included() -> None:
    stream = FakeStream()
    rec = recogniser(stream, Said(), skip_quiet=False)  # all silence: else the engine is given none of it
    run(rec, 3 * STEP + 7)
    assert rec.fed_s == pytest.approx(0.74)
    assert rec.heard_s == pytest.approx(rec.fed_s)
    assert rec.lag_s == 0
    assert sum(stream.taken) == (3 * STEP + 7) * len(FRAME), "the tail shorter than a step is recognised too"


def test_a_sentence_that_ends_in_the_last_short_chunk_is_said() -> None:
    # VoskStream.accept takes the result when Vosk detects the end of a sentence (Result()), after
    # which finish() has nothing left: a final returned for the tail is the only copy of it
    stream = FakeStream([None, F("最后的话")], last=None)
    said = Said()
    rec = recogniser(stream, said)
    run(rec, STEP + 5)
    assert said.lines() == [(True, "最后的话", 1)]


def test_a_pause_after_words_settles_the_sentence_at_once() -> None:
    # 1 s of voice (steps 1–5), then the leg is quiet: the 0.6 s pause is complete at the end of
    # step 8; the engine's own rule has not ended the sentence, so the recogniser cuts it there
    stream = FakeStream([P("路"), P("路灯"), P("路灯"), P("路灯不"), P("路灯不亮"), P("路灯不亮"),
                         P("路灯不亮"), P("路灯不亮"), None, None, None, None])
    stream.on_cut = [F("路灯不亮")]
    said = Said()
    rec = recogniser(stream, said, partial_every_s=0.0)
    run(rec, spoken(1.0) + quiet(1.4))
    assert stream.cut_at == [8], "cut once, when the pause reached 0.6 s"
    assert said.lines()[-1] == (True, "路灯不亮", 1)
    assert rec.cuts == 1 and rec.lines == 1


def test_no_cut_without_words_or_after_the_engine_settled_them() -> None:
    # the engine ends the sentence itself at step 6: the pause that follows has nothing left to cut;
    # then a cough with no words heard: nothing to cut either
    stream = FakeStream([P("请"), P("请快"), P("请快修"), P("请快修"), P("请快修"), F("请快修"),
                         None, None, None, None, None, None, None, None, None])
    said = Said()
    rec = recogniser(stream, said)
    run(rec, spoken(1.0) + quiet(1.2) + spoken(0.4) + quiet(1.4))
    assert stream.cut_at == []
    assert [x for x in said.lines() if x[0]] == [(True, "请快修", 1)]


def test_pause_s_zero_leaves_sentences_to_the_engine() -> None:
    stream = FakeStream([P("路灯")] * 12)
    rec = recogniser(stream, Said(), pause_s=0.0)
    run(rec, spoken(1.0) + quiet(1.4))
    assert stream.cut_at == [] and rec.cuts == 0


def test_quiet_between_sentences_is_not_given_to_the_engine_and_the_times_stay_the_legs() -> None:
    # voice 1 s, quiet 3 s, voice 1 s, quiet 1 s (30 steps). The first sentence is cut at step 8
    # (0.6 s of pause); steps 9–20 are quiet and not given; at step 21 the voice is back and the
    # engine gets the last 0.4 s of the quiet ahead of it; the second sentence is cut at step 28
    stream = FakeStream([P("路灯")] * 8 + [P("请修")] * 8)
    stream.on_cut = [F("路灯不亮"), F("请快修")]
    said = Said()
    rec = recogniser(stream, said, partial_every_s=0.0, max_lag_s=60.0)  # fed at once, not in real time
    run(rec, spoken(1.0) + quiet(3.0) + spoken(1.0) + quiet(1.0))
    step = STEP * len(FRAME)
    assert stream.cut_at == [8, 16]
    assert stream.taken == [step] * 8 + [step + 4 * len(FRAME) * 10 // 2] + [step] * 7
    finals = [h for _, h, _ in said.calls if h.final]
    assert [h.text for h in finals] == ["路灯不亮", "请快修"]
    # the engine said 0.5–1.0 s into what it was given; 2.0 s of the leg were not given before the
    # second sentence (12 quiet steps less the 0.4 s ahead of the voice)
    assert (finals[0].start_s, finals[0].end_s) == (0.5, 1.0)
    assert (finals[1].start_s, finals[1].end_s) == (2.5, 3.0)
    assert finals[1].words[0]["start"] == 2.5 and finals[1].words[0]["end"] == 3.0
    assert rec.heard_s == pytest.approx(6.0) and rec.given_s == pytest.approx(3.6)
    assert rec.complete, "quiet not given is still heard: the leg is whole"


def test_a_word_left_unsettled_keeps_the_engine_listening_through_the_quiet() -> None:
    # the engine still shows a partial after the pause and no cut settles it (a click, not speech):
    # the quiet is given to it until it lets go of the word
    stream = FakeStream([P("嗯")] * 12)
    rec = recogniser(stream, Said(), partial_every_s=0.0)
    run(rec, spoken(0.1) + quiet(2.3))
    assert len(stream.taken) == 12 and stream.cut_at == []
