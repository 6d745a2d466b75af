"""Real Vosk (the Korean model) on two-leg recordings: every word has its speaker and its time.
Recognition is not deterministic: structure and timing are asserted, never the exact text."""

from __future__ import annotations

from sqlmodel import Session

from recordings import catalog, worker
from recordings.models import Transcript
from recordings.transcribe import read_pcm, recognise, transcribe_legs
from tests.recordings.conftest import two_leg_call

LATER = 10_000_000_000.0


def test_each_leg_is_transcribed_with_its_speaker_and_times(tmp_path, vosk_model):
    files = two_leg_call(tmp_path, "hotline-20261123-101500-1763867000.1", [("sil", 5.0), ("say", "caller_ko")],
                         [("say", "agent_ko"), ("sil", 1.0)], total_s=14.0)
    words, audio_s = transcribe_legs(vosk_model, {"citizen": files["citizen"], "operator": files["operator"]})
    assert abs(audio_s - 28.0) < 0.01
    by = {sp: [w for w in words if w["speaker"] == sp] for sp in ("citizen", "operator")}
    assert len(by["citizen"]) >= 3 and len(by["operator"]) >= 3
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    for w in words:
        assert 0 <= w["start"] <= w["end"] <= 14.0 and w["word"]
    # the citizen said nothing for 5 s, the operator spoke first: times follow the audio of each leg
    assert min(w["start"] for w in by["citizen"]) >= 4.5
    assert min(w["start"] for w in by["operator"]) < 2.0


def test_a_leg_is_read_as_recorded_with_its_rate(tmp_path):
    # Vosk resamples to its model's rate itself: the 8 kHz leg is handed over untouched
    files = two_leg_call(tmp_path, "hotline-x", [("say", "caller_ko")], [("sil", 1.0)], total_s=3.0)
    pcm, rate, seconds = read_pcm(files["citizen"])
    assert (rate, seconds, len(pcm)) == (8000, 3.0, 3 * 8000 * 2)


def test_a_grammar_spots_only_its_phrases(tmp_path, vosk_model):
    files = two_leg_call(tmp_path, "hotline-y", [("say", "caller_ko")], [("sil", 1.0)], total_s=8.0)
    phrases = ["우리", "집", "앞", "큰", "고쳐", "주세요", "합니다"]
    pcm, rate, _ = read_pcm(files["citizen"])
    found = recognise(vosk_model, pcm, rate=rate, grammar=phrases)
    assert found and {w["word"] for w in found} <= set(phrases)


def test_a_queued_recording_is_transcribed_and_checked(engine, rec_settings, make_call, vosk_model):
    make_call("1763867100.2")
    catalog.collect(engine, rec_settings, now=LATER)
    c = worker.claim(engine, "test", lease_s=30)
    assert worker.process(engine, rec_settings, vosk_model, c, lease_s=30) is True
    with Session(engine) as s:
        tr = s.get(Transcript, c.recording_id)
    assert {w["speaker"] for w in tr.words} == {"citizen", "operator"}
    codes = [f["code"] for f in tr.findings]
    assert "greeting_missing" in codes  # Korean speech never says 您好
    assert worker.backlog(engine)["done"] == 1


def test_phrase_spotting_finds_what_the_free_transcript_garbles(engine, rec_settings, make_call, vosk_model):
    # a Korean "forbidden phrase" the demo operator really says (agent_ko: "네, 시민 상담 센터입니다…")
    make_call("1763867300.3")
    catalog.collect(engine, rec_settings, now=LATER)
    spotting = rec_settings.model_copy(update={"qa_phrase_spotting": True, "qa_forbidden_phrases": ["시민"]})
    c = worker.claim(engine, "test", lease_s=30)
    assert worker.process(engine, spotting, vosk_model, c, lease_s=30)
    with Session(engine) as s:
        tr = s.get(Transcript, c.recording_id)
    free_text = "".join(w["word"] for w in tr.words if w["speaker"] == "operator")
    hits = [f for f in tr.findings if f["code"] == "forbidden_phrase"]
    assert hits, (free_text, tr.findings)
    assert all(0 <= f["start"] < f["end"] <= 12.0 for f in hits)
    if "시민" not in free_text:  # (free recognition of espeak-ng Korean almost never gets it)
        assert {f["detail"] for f in hits} == {"禁用语“시민”（短语识别）"}
    assert min(f["start"] for f in hits) < 6.0  # the operator says it in their first sentence
