"""A real call through the real Asterisk (SIPp phones speaking Korean on both legs) is recorded,
registered, moved to storage, transcribed by real Vosk and checked by the QA rules."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlmodel import Session

from hotline.calls import FinishedCall
from recordings import catalog, service, worker
from recordings.db import make_engine, migrate
from recordings.models import Recording, Transcript
from tests.conftest import speech
from tests.support.ami import chanvars, ts

pytestmark = pytest.mark.asterisk


async def test_a_recorded_call_is_transcribed_per_leg_with_times_inside_the_call(
        pbx, ami, phones, settings, audio_dir, tmp_path, vosk_model):
    seat = settings.seats[0]
    # the operator speaks at once; the citizen waits (their audio starts before the queue answers)
    phones.seat(seat, settings.seat_password(seat), speech(audio_dir, ("say", "agent_ko"), ("sil", 120)),
                ring_ms=1000, talk_ms=16_000)
    pbx.sign_in(seat)
    phones.callers(["13953012345"], settings.hotline_number,
                   speech(audio_dir, ("sil", 8), ("say", "caller_ko"), ("sil", 120)), hangup_ms=24_000)
    connect = await ami.wait_for("AgentConnect", 20, Queue=settings.queue_name)
    complete = await ami.wait_for("AgentComplete", 30, Queue=settings.queue_name)
    talk_s = ts(complete) - ts(connect)
    variables = chanvars(connect)
    base, uid = variables["HL_RECBASE"], variables["HL_UID"]
    # MixMonitor runs on the citizen's channel: the files close when the citizen hangs up (after
    # the survey), which is when the CTI publishes CallCompleted
    await ami.wait_for("Hangup", 40, Uniqueid=uid)

    local = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'rec.db'}",
                                        "recordings_dir": tmp_path / "store"})
    engine = make_engine(local.db_url)
    migrate(engine)
    call = FinishedCall(call_id=uid, caller_num="13953012345", queue=settings.queue_name, seats_rung=(seat,),
                        seat=seat, operator="op1024", job_number="1024", offered_at=ts(connect),
                        answered_at=ts(connect), ended_at=ts(complete), wait_ms=0, within_rule=True, talk_s=talk_s,
                        recordings=(f"{base}.wav", f"{base}-in.wav", f"{base}-out.wav"), recording_base=base)
    service.register_calls(engine, local, [call])  # what the call filer does with each round of CallCompleted

    # only this call's files: other tests' recordings in the shared spool are not ours to move
    spool = catalog.spool_dir(local)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        files = [spool / f"{base}{s}.wav" for s in ("", "-in", "-out")]
        if all(f.exists() for f in files) and time.time() - max(f.stat().st_mtime for f in files) > catalog.SETTLE_S:
            break
        await asyncio.sleep(0.5)
    rid = catalog.store(engine, local, base, spool)
    assert not any(spool.glob(f"{base}*"))  # moved out of the chroot's spool
    with Session(engine) as s:
        rec = s.get(Recording, rid)
    assert (rec.status, rec.uniqueid, rec.seat, rec.operator) == ("ok", uid, seat, "1024"), rec.problem
    assert rec.duration_s > talk_s - 1.0

    claim = worker.claim(engine, "e2e", lease_s=60)
    assert claim.recording_id == rid
    assert worker.process(engine, local, vosk_model, claim, lease_s=60)
    with Session(engine) as s:
        tr = s.get(Transcript, rid)
    by = {sp: [w for w in tr.words if w["speaker"] == sp] for sp in ("citizen", "operator")}
    assert len(by["citizen"]) >= 2 and len(by["operator"]) >= 2, tr.words
    for w in tr.words:
        assert 0 <= w["start"] < w["end"] <= rec.duration_s + 0.1
    # the operator spoke from the answer, the citizen only later: each leg kept its own speaker
    assert min(w["start"] for w in by["operator"]) < 2.0
    assert min(w["start"] for w in by["citizen"]) > 2.0
    codes = {f["code"] for f in tr.findings}
    assert "greeting_missing" in codes  # the rules ran (Korean never says 您好)
    for f in tr.findings:
        assert 0 <= f["start"] <= f["end"] <= rec.duration_s + 0.1
    engine.dispose()
