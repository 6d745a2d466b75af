"""The live transcript's legs in the database, and their use after the call.

A listening node writes each leg as its sentences settle (:func:`save`: one row per call, speaker
and part, replaced whole, so a retry or a second write never doubles a line; a citizen transferred
to another seat keeps one leg, the operator after the transfer is part 2). When the recording
is transcribed, a leg the node heard completely (:data:`COMPLETE`, not :data:`PARTIAL`) is not heard again: its words
are placed on the recording's timeline, and only what the live audio did not cover (the IVR and
the queue before the seat answered, the survey after the operator left) is recognised from the
file (:func:`words_with_live`).

Placing: the citizen's spy and the citizen's recording both end when the citizen hangs up, so the
live audio starts ``recording length − live length`` into the recording; both spies start
together, so the operator's leg takes the same offset. No clock of two machines is compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from recordings.models import LiveLeg, utcnow
from recordings.transcribe import SPEAKER_OF_LEG, read_pcm, recognise

LISTENING, COMPLETE, DROPPED = "listening", "complete", "dropped"
# heard in full, but the call became three-party (三方): the recording puts the room (the department
# with the citizen in a callback, with the operator in a queue call) on one leg, which no live leg
# matches, so the file is heard again; the live words (the department's on a leg of its own) stay
# for the lead and QA to read
PARTIAL = "partial"
MIN_GAP_S = 0.5  # a stretch of the recording shorter than this outside the live audio is not heard again


def save(engine: sa.Engine, *, call_id: str, speaker: str, part: int = 1, seat: str = "", node: str = "",
         model: str = "", state: str = LISTENING, started_at: datetime | None = None, audio_s: float = 0.0,
         lines: Iterable[Mapping[str, Any]] = (), words: Iterable[Mapping[str, Any]] = ()) -> None:
    """The leg as heard so far (or in full): replaces what was written of it before."""
    with Session(engine) as s:
        row = s.exec(select(LiveLeg).where(LiveLeg.call_id == call_id, LiveLeg.speaker == speaker,
                                           LiveLeg.part == part)).first()
        if row is None:
            row = LiveLeg(call_id=call_id, speaker=speaker, part=part, started_at=started_at or utcnow())
        row.seat, row.node, row.model, row.state, row.audio_s = seat, node, model, state, round(audio_s, 3)
        row.lines, row.words = [dict(x) for x in lines], [dict(w) for w in words]
        s.add(row)
        s.commit()


def legs_of(engine_or_session: sa.Engine | Session, call_id: str) -> list[LiveLeg]:
    """Every leg of the call, by speaker and part."""
    query = select(LiveLeg).where(LiveLeg.call_id == call_id).order_by(LiveLeg.speaker, LiveLeg.part)
    if isinstance(engine_or_session, Session):
        return list(engine_or_session.exec(query).all())
    with Session(engine_or_session) as s:
        rows = list(s.exec(query).all())
        for r in rows:
            s.expunge(r)
    return rows


def of_call(engine_or_session: sa.Engine | Session, call_id: str) -> dict[str, LiveLeg]:
    """The call's legs by speaker; a speaker with two (a transfer) by the later."""
    return {r.speaker: r for r in legs_of(engine_or_session, call_id)}


def whole_legs(engine_or_session: sa.Engine | Session, call_id: str) -> dict[str, LiveLeg]:
    """The legs the post-call transcription may take in place of the recording: by speaker, only
    if each speaker had one (after a transfer the operator's recording holds two operators, and the
    live legs do not place on it: the file is heard again)."""
    legs = legs_of(engine_or_session, call_id)
    by = {r.speaker: r for r in legs}
    return by if len(by) == len(legs) else {}


def usable(live: Mapping[str, LiveLeg], legs: Iterable[str]) -> bool:
    """Every leg of the recording was heard live in full (a leg missing or dropped: hear the file)."""
    speakers = [SPEAKER_OF_LEG.get(leg, leg) for leg in legs]
    return bool(speakers) and all(sp in live and live[sp].state == COMPLETE for sp in speakers)


def words_with_live(model: Any, legs: Mapping[str, str | Path | bytes], live: Mapping[str, LiveLeg], *,
                    heartbeat: Callable[[], None] | None = None) -> tuple[list[dict[str, Any]], float, float]:
    """Both legs' words as :func:`recordings.transcribe.transcribe_legs` gives them, taking the
    live words where the live audio covered the recording. Returns (words, audio seconds of the
    recording, seconds recognised from the file here)."""
    read = {leg: read_pcm(src) for leg, src in legs.items()}
    citizen = live.get("citizen")
    offset = 0.0
    if citizen is not None and "citizen" in read:
        offset = max(0.0, read["citizen"][2] - citizen.audio_s)
    words: list[dict[str, Any]] = []
    audio_s = heard_here = 0.0
    for leg, (pcm, rate, seconds) in read.items():
        speaker = SPEAKER_OF_LEG.get(leg, leg)
        audio_s += seconds
        heard = live[speaker]
        start, end = min(offset, seconds), min(seconds, offset + heard.audio_s)
        for w in heard.words:
            words.append({"speaker": speaker, **w, "start": round(w["start"] + offset, 3),
                          "end": round(w["end"] + offset, 3)})
        for a, b in ((0.0, start), (end, seconds)):  # what the spy did not hear: before it, after it
            if b - a < MIN_GAP_S:
                continue
            part = pcm[int(a * rate) * 2:int(b * rate) * 2]
            heard_here += b - a
            for w in recognise(model, part, rate=rate, heartbeat=heartbeat):
                words.append({"speaker": speaker, **w, "start": round(w["start"] + a, 3),
                              "end": round(w["end"] + a, 3)})
    words.sort(key=lambda w: (w["start"], w["speaker"]))
    return words, audio_s, heard_here
