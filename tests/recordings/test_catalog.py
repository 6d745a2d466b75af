"""The catalog: from Asterisk's spool into storage, linked to call, seat, operator and ticket;
bad files flagged, never raised; retention purge logged."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from cti.domain import CallCompleted, CallRecord
from hotline.bus import InProcessBus
from recordings import catalog, service
from recordings.models import AccessLog, Recording, RecordingFile, TranscriptionJob

LATER = 10_000_000_000.0  # "now" far after the files were written: every file has settled


def call_record(base: str, seat: str = "8001", survey: str = "1") -> CallRecord:
    uid = catalog.uniqueid_of(base)
    return CallRecord(call_id=uid, caller_num="13953012345", caller_name="", queue="hotline", seats_rung=(seat,),
                      seat=seat, offered_at=1.0, answered_at=2.0, ended_at=20.0, wait_ms=1000, within_rule=True,
                      talk_s=18.0, abandoned=False, recordings=(f"{base}.wav", f"{base}-in.wav", f"{base}-out.wav"),
                      survey=survey, variables={"HL_RECBASE": base, "HL_UID": uid})


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_a_finished_call_is_moved_to_storage_checked_linked_and_queued(engine, rec_settings, spool, make_call):
    base = make_call("1763866021.42")
    digests = {leg: sha(spool / f"{base}{suf}.wav") for leg, suf in catalog.SUFFIX.items()}
    with engine.begin() as conn:  # the call log knows the call's ticket (no ticket row needed here)
        conn.execute(sa.text("PRAGMA foreign_keys=OFF"))
        conn.execute(sa.text("INSERT INTO call_record (uniqueid, caller_number, seat, recording_id, ticket_id) "
                             "VALUES ('1763866021.42', '13953012345', '8001', '', 77)"))
    rid = catalog.register_call(engine, rec_settings.model_copy(update={"agi_job_numbers": {"8001": "1024"}}),
                                call_record(base))
    assert catalog.collect(engine, rec_settings, now=LATER) == [rid]
    assert list(spool.iterdir()) == []  # the chroot's spool does not fill
    with Session(engine) as s:
        rec = s.get(Recording, rid)
        files = {f.leg: f for f in s.exec(select(RecordingFile).where(RecordingFile.recording_id == rid))}
        job = s.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == rid)).one()
    assert (rec.status, rec.uniqueid, rec.seat, rec.operator, rec.survey, rec.ticket_id) == (
        "ok", "1763866021.42", "8001", "1024", "1", 77)
    assert rec.started_at.replace(tzinfo=UTC) == datetime.fromtimestamp(1763866021, UTC)
    assert abs(rec.duration_s - 12.0) < 0.01
    storage = catalog.storage_dir(rec_settings)
    for leg, f in files.items():
        assert f.status == "ok" and f.sha256 == digests[leg]
        assert f.path.startswith(str(storage / "2025" / "11" / "23")) and os.path.getsize(f.path) == f.size_bytes
    assert job.state == "queued"


def test_files_still_being_written_are_left_until_they_settle(engine, rec_settings, spool, make_call):
    base = make_call("1763866100.1")
    catalog.register_call(engine, rec_settings, call_record(base))
    assert catalog.collect(engine, rec_settings, now=time.time()) == []  # just written: MixMonitor may hold them
    assert len(list(spool.iterdir())) == 3
    assert len(catalog.collect(engine, rec_settings, now=time.time() + catalog.SETTLE_S + 1)) == 1


def test_an_unannounced_recording_is_adopted_with_the_seat_from_the_call_log(engine, rec_settings, spool, make_call):
    make_call("1763866200.7")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO call_record (uniqueid, caller_number, seat, recording_id) "
                             "VALUES ('1763866200.7', '13800000000', '8003', '')"))
    assert catalog.collect(engine, rec_settings, now=time.time() + catalog.SETTLE_S + 1) == []  # no event: wait more
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    with Session(engine) as s:
        rec = s.get(Recording, rid)
    assert (rec.uniqueid, rec.seat, rec.operator, rec.status) == ("1763866200.7", "8003", "8003", "ok")


def test_a_corrupt_leg_is_flagged_and_the_rest_still_stored(engine, rec_settings, spool, make_call, caplog):
    base = make_call("1763866300.2")
    (spool / f"{base}-out.wav").write_bytes(b"RIFF\x00\x00garbage")
    catalog.register_call(engine, rec_settings, call_record(base))
    with caplog.at_level(logging.WARNING):
        [rid] = catalog.collect(engine, rec_settings, now=LATER)
    with Session(engine) as s:
        rec = s.get(Recording, rid)
        files = {f.leg: f for f in s.exec(select(RecordingFile).where(RecordingFile.recording_id == rid))}
        job = s.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == rid)).first()
    assert rec.status == "corrupt" and rec.problem.startswith("话务员：无法读取")
    assert files["operator"].status == "corrupt" and files["citizen"].status == "ok"
    assert job is not None  # the citizen's leg can still be transcribed
    assert "stored with problems" in caplog.text


def test_an_announced_recording_that_never_arrives_is_flagged_missing(engine, rec_settings, spool):
    rid = catalog.register_call(engine, rec_settings, call_record("hotline-20261123-101500-1763866400.3"))
    catalog.collect(engine, rec_settings, now=time.time())
    with Session(engine) as s:
        assert s.get(Recording, rid).status == "pending"
    catalog.collect(engine, rec_settings, now=time.time() + catalog.MISSING_AFTER_S + 5)
    with Session(engine) as s:
        rec = s.get(Recording, rid)
    assert (rec.status, rec.problem) == ("missing", "通话结束后未找到录音文件")


def test_a_missing_leg_is_flagged(engine, rec_settings, spool, make_call):
    base = make_call("1763866500.4")
    (spool / f"{base}-in.wav").unlink()
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    with Session(engine) as s:
        rec = s.get(Recording, rid)
    assert (rec.status, rec.problem) == ("missing", "来电人：文件不存在")


def test_unanswered_calls_register_nothing(engine, rec_settings):
    rec = call_record("hotline-20261123-101500-1763866600.5")
    unanswered = CallRecord(**{**{f: getattr(rec, f) for f in rec.__dataclass_fields__}, "recordings": (),
                               "variables": {}, "seat": "", "answered_at": None})
    assert catalog.register_call(engine, rec_settings, unanswered) is None


def test_the_bus_listener_registers_completed_calls_and_ignores_the_rest(engine, rec_settings, spool, make_call):
    base = make_call("1763866700.6")
    bus = InProcessBus()
    bus.add_listener(service.bus_listener(rec_settings, engine))
    bus.publish_nowait(CallCompleted(at=20.0, call_id="1763866700.6", record=call_record(base, seat="8002")))
    with Session(engine) as s:
        rec = s.exec(select(Recording).where(Recording.base == base)).one()
    assert (rec.status, rec.seat, rec.uniqueid) == ("pending", "8002", "1763866700.6")


def test_retention_purges_old_audio_keeps_the_metadata_and_logs_it(engine, rec_settings, spool, make_call, caplog):
    old = make_call("1763866800.1")
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    path = catalog.paths(engine, rid)["mixed"].path
    with caplog.at_level(logging.INFO, logger="recordings.retention"):
        start = datetime.fromtimestamp(1763866800, UTC)
        assert catalog.purge(engine, rec_settings, now=start + timedelta(days=10)) == []
        purged = catalog.purge(engine, rec_settings, now=start + timedelta(days=200))
    assert purged == [old] and not os.path.exists(path)
    assert f"purged recording {old}" in caplog.text
    with Session(engine) as s:
        assert s.get(Recording, rid).status == "purged"
        entry = s.exec(select(AccessLog).where(AccessLog.action == "purge")).one()
    assert (entry.username, entry.recording_id) == ("system", rid)


async def test_inside_the_bridges_loop_the_listener_writes_from_a_thread(engine, rec_settings, spool, make_call):
    import asyncio

    base = make_call("1763866900.9")
    bus = InProcessBus()
    bus.add_listener(service.bus_listener(rec_settings, engine))
    await bus.publish(CallCompleted(at=20.0, call_id="1763866900.9", record=call_record(base, seat="8004")))
    for _ in range(100):
        with Session(engine) as s:
            rec = s.exec(select(Recording).where(Recording.base == base)).first()
        if rec is not None:
            break
        await asyncio.sleep(0.05)
    assert rec is not None and rec.seat == "8004"


def test_a_second_copy_of_a_stored_recording_is_set_aside_not_overwritten(engine, rec_settings, spool, make_call):
    base = make_call("1763867000.5")
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    first = catalog.paths(engine, rid)["mixed"]
    make_call("1763867000.5")
    assert catalog.collect(engine, rec_settings, now=LATER) == []
    assert list(spool.iterdir()) == []
    aside = list((catalog.storage_dir(rec_settings) / "duplicates").glob(f"*/{base}.wav"))
    assert len(aside) == 1 and sha(first.path) == first.sha256


def test_a_voice_message_is_one_citizen_leg_taken_as_soon_as_it_settles_and_queued(engine, rec_settings, spool):
    from tests.recordings.conftest import CITIZEN_SAYS, leg

    base = "message-20261123-221500-1795400000.7"
    path = leg(spool / f"{base}-in.wav", CITIZEN_SAYS, 9.0)
    written = path.stat().st_mtime
    assert catalog.collect(engine, rec_settings, now=written + 1) == []  # still being written, maybe
    [rid] = catalog.collect(engine, rec_settings, now=written + catalog.SETTLE_S + 1)  # not the orphans' 2 min
    with Session(engine) as s:
        rec = s.get(Recording, rid)
        files = {f.leg: f for f in s.exec(select(RecordingFile).where(RecordingFile.recording_id == rid))}
        job = s.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == rid)).one()
    assert (rec.status, rec.problem, rec.uniqueid) == ("ok", "", "1795400000.7")  # no mixed or operator leg missed
    assert list(files) == ["citizen"] and files["citizen"].status == "ok" and job.state == "queued"
    assert catalog.ids_of(engine, [base, "message-unknown"]) == {base: rid}
    assert catalog.ids_of(engine, []) == {}
