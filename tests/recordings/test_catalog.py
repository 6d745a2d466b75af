"""The catalog: from Asterisk's spool into storage, linked to call, seat, operator and ticket;
bad files flagged, never raised; retention purge logged."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete as sa_delete
from sqlmodel import Session, select

from hotline.calls import FinishedCall
from recordings import catalog, service
from recordings.models import AccessLog, Recording, RecordingFile, TranscriptionJob
from testkit.concurrent import at_once
from ticketing.calls import CallLog

LATER = 10_000_000_000.0  # "now" far after the files were written: every file has settled


def call_record(base: str, seat: str = "8001", survey: int | None = 1, job_number: str = "") -> FinishedCall:
    """The finished call the bridge reports (``CallCompleted.call``)."""
    uid = catalog.uniqueid_of(base)
    return FinishedCall(call_id=uid, caller_num="13953012345", queue="hotline", seats_rung=(seat,), seat=seat,
                        operator="op1024" if job_number else "", job_number=job_number, offered_at=1.0,
                        answered_at=2.0, ended_at=20.0, wait_ms=1000, within_rule=True, talk_s=18.0,
                        recordings=(f"{base}.wav", f"{base}-in.wav", f"{base}-out.wav"), recording_base=base,
                        survey=survey)


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def ticket_for_call(engine, uid: str) -> int:
    """A ticket the call produced, linked through the call log's public API."""
    from hotline.identity import Principal, Role
    from ticketing.context import StoreContext
    from ticketing.store import Store

    store = Store.on(StoreContext(engine))
    t = store.tickets.create({"category": "求助", "title": "停水", "caller_number": "13953012345"},
                             Principal("op1024", Role.OPERATOR, job_number="1024"))
    store.calls.link_ticket(uid, t.id)
    return t.id


def test_a_finished_call_is_moved_to_storage_checked_linked_and_queued(engine, rec_settings, spool, make_call):
    base = make_call("1763866021.42")
    digests = {leg: sha(spool / f"{base}{suf}.wav") for leg, suf in catalog.SUFFIX.items()}
    ticket = ticket_for_call(engine, "1763866021.42")  # the call log knows the call's ticket
    # the seat's job number from the setting: the fallback when nobody signed in through the console
    rid = catalog.register_call(engine, rec_settings.model_copy(update={"agi_job_numbers": {"8001": "1024"}}),
                                call_record(base), CallLog(engine))
    assert catalog.collect(engine, rec_settings, now=LATER) == [rid]
    assert list(spool.iterdir()) == []  # the chroot's spool does not fill
    with Session(engine) as s:
        rec = s.get(Recording, rid)
        files = {f.leg: f for f in s.exec(select(RecordingFile).where(RecordingFile.recording_id == rid))}
        job = s.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == rid)).one()
    assert (rec.status, rec.uniqueid, rec.seat, rec.operator, rec.survey, rec.ticket_id) == (
        "ok", "1763866021.42", "8001", "1024", "1", ticket)
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


def test_a_recording_is_filed_under_the_job_number_of_whoever_answered(engine, rec_settings, spool, make_call):
    # not the seat's number: operators find their own calls, and QA's greeting rule hears the 工号
    base = make_call("1763866150.3")
    rid = catalog.register_call(engine, rec_settings, call_record(base, seat="8005", job_number="1024"))
    catalog.collect(engine, rec_settings, now=LATER)
    with Session(engine) as s:
        rec = s.get(Recording, rid)
    assert (rec.seat, rec.operator) == ("8005", "1024")


def test_a_callback_s_recording_is_filed_with_who_dialled_it_and_its_ticket(engine, rec_settings, spool):
    """回拨 / 回访: no queue call, nothing in the call log but the console's link to the ticket; the
    bridge's OutboundEnded names the seat, the 工号 and the number called, and the files are taken as
    soon as they settle (announced), not after the orphans' wait."""
    from tests.recordings.conftest import CITIZEN_SAYS, OPERATOR_SAYS, two_leg_call

    uid = "1796552212.900000"
    base = f"callback-20261206-101653-{uid}"
    two_leg_call(spool, base, CITIZEN_SAYS, OPERATOR_SAYS, 12.0)
    ticket = ticket_for_call(engine, uid)  # the 回访 page links the call to the ticket it dials for
    calls = CallLog(engine)
    rid = service.register_outbound(engine, rec_settings, calls, base=base, call_id=uid, seat="8002",
                                    job_number="1024", number="13953012345")
    assert service.register_outbound(engine, rec_settings, calls, base=base, call_id=uid, seat="8002",
                                     job_number="1024", number="13953012345") == rid  # told twice: one row
    assert catalog.collect(engine, rec_settings, now=time.time() + catalog.SETTLE_S + 1, calls=calls) == [rid]
    with Session(engine) as s:
        rec = s.get(Recording, rid)
    assert (rec.uniqueid, rec.seat, rec.operator, rec.caller_num, rec.ticket_id, rec.status) == (
        uid, "8002", "1024", "13953012345", ticket, "ok")
    assert service.register_outbound(engine, rec_settings, calls, base="", call_id=uid, seat="8002",
                                     job_number="1024", number="13953012345") is None  # nothing recorded


def test_an_unannounced_recording_is_adopted_with_seat_and_job_number_from_the_call_log(engine, rec_settings, spool,
                                                                                         make_call):
    base = make_call("1763866200.7")
    calls = CallLog(engine)
    calls.record(FinishedCall(call_id="1763866200.7", caller_num="13800000000", offered_at=1.0, ended_at=9.0,
                              seat="8003", operator="op1025", job_number="1025", answered_at=2.0, survey=2,
                              recording_base=base))
    ticket = ticket_for_call(engine, "1763866200.7")
    assert catalog.collect(engine, rec_settings, now=time.time() + catalog.SETTLE_S + 1, calls=calls) == []  # wait more
    [rid] = catalog.collect(engine, rec_settings, now=LATER, calls=calls)
    with Session(engine) as s:
        rec = s.get(Recording, rid)
    assert (rec.uniqueid, rec.seat, rec.operator, rec.status) == ("1763866200.7", "8003", "1025", "ok")
    assert (rec.caller_num, rec.survey, rec.ticket_id) == ("13800000000", "2", ticket)


def test_without_the_call_log_an_unannounced_recording_is_filed_under_nothing_it_cannot_know(
        engine, rec_settings, spool, make_call):
    make_call("1763866250.8")
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    with Session(engine) as s:
        rec = s.get(Recording, rid)
    assert (rec.uniqueid, rec.seat, rec.operator, rec.ticket_id, rec.status) == ("1763866250.8", "", "", None, "ok")


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


def test_a_scan_loads_no_recording_that_is_still_within_its_wait(engine, rec_settings, spool, make_call):
    """The scan runs every 3 s on the bridge's node. It read every recording announced and not yet
    come, twice, as objects: a burst's calls, or every call of the last 10 minutes while the files do
    not come (the screen-pop bench: a ninth of that node's CPU, on a thread that holds the GIL from the
    AMI reads). It now asks the database by name for what the spool holds, and loads only what waited
    past the cutoff."""
    from sqlalchemy import event

    catalog.register_calls(engine, rec_settings, [call_record(f"hotline-20261123-101500-17638664{i:02d}.1")
                                                  for i in range(40)])
    base = make_call("1763866500.9")  # announced, and its files are in the spool
    catalog.register_call(engine, rec_settings, call_record(base))
    loaded: list[str] = []

    def on_load(target: Recording, _context: object) -> None:
        loaded.append(target.base)

    event.listen(Recording, "load", on_load)
    try:
        stored = catalog.collect(engine, rec_settings, now=time.time() + 60)
    finally:
        event.remove(Recording, "load", on_load)
    assert len(stored) == 1
    assert set(loaded) <= {base}  # the 40 still waiting were not read
    catalog.collect(engine, rec_settings, now=time.time() + catalog.MISSING_AFTER_S + 5)
    with Session(engine) as s:
        waiting = s.exec(select(Recording).where(Recording.status == "pending")).all()
    assert waiting == []  # all 40 flagged missing once past the cutoff


def test_a_missing_leg_is_flagged(engine, rec_settings, spool, make_call):
    base = make_call("1763866500.4")
    (spool / f"{base}-in.wav").unlink()
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    with Session(engine) as s:
        rec = s.get(Recording, rid)
    assert (rec.status, rec.problem) == ("missing", "来电人：文件不存在")


def test_unanswered_calls_register_nothing(engine, rec_settings):
    from dataclasses import replace

    unanswered = replace(call_record("hotline-20261123-101500-1763866600.5"), recordings=(), recording_base="",
                         seat="", answered_at=None)
    assert catalog.register_call(engine, rec_settings, unanswered) is None


def test_a_registration_that_fails_raises_to_the_filer_which_keeps_the_calls(rec_settings):
    """The call filer (launch/filing.py) is the one caller: it must hear the failure to keep the
    calls in its outbox and retry (tests/launch/test_filing.py), not a log line and a lost row."""
    import sqlalchemy as sa

    from hotline.db import make_engine

    broken = make_engine("sqlite:///" + str(rec_settings.var_dir / "no-tables.db"))
    with pytest.raises(sa.exc.OperationalError):
        service.register_calls(broken, rec_settings, [call_record("hotline-20261123-101500-1763866700.6")])


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


def test_a_different_second_copy_of_a_stored_recording_is_set_aside_not_overwritten(engine, rec_settings, spool,
                                                                                   make_call):
    base = make_call("1763867000.5")
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    first = catalog.paths(engine, rid)["mixed"]
    make_call("1763867000.5", total_s=13.0)  # another file under the same name
    assert catalog.collect(engine, rec_settings, now=LATER) == []
    assert list(spool.iterdir()) == []
    aside = list((catalog.storage_dir(rec_settings) / "duplicates").glob(f"*/{base}.wav"))
    assert len(aside) == 1 and sha(first.path) == first.sha256


def test_a_crash_before_the_commit_leaves_the_spool_whole_and_the_next_scan_stores_it_once(
        engine, rec_settings, spool, make_call, monkeypatch):
    base = make_call("1763867000.6")
    before = {p.name: sha(p) for p in spool.iterdir()}

    real_commit, crashes = Session.commit, []

    def crash_once(self) -> None:  # the store's commit dies; later ones (the scan's own) go through
        if not crashes:
            crashes.append(1)
            raise RuntimeError("killed before the commit")
        real_commit(self)

    with monkeypatch.context() as m:
        m.setattr(Session, "commit", crash_once)
        assert catalog.collect(engine, rec_settings, now=LATER) == []  # logged, not raised
    assert {p.name: sha(p) for p in spool.iterdir()} == before  # nothing left the spool
    [rid] = catalog.collect(engine, rec_settings, now=LATER)  # the next scan: over the partial copies
    files = catalog.paths(engine, rid)
    assert {f.status for f in files.values()} == {"ok"} and list(spool.iterdir()) == []
    assert {os.path.basename(f.path): f.sha256 for f in files.values()} == before
    with Session(engine) as s:
        assert len(s.exec(select(Recording).where(Recording.base == base)).all()) == 1
        assert len(s.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == rid)).all()) == 1


def test_a_crash_after_the_commit_leaves_identical_spool_files_that_the_next_scan_removes(
        engine, rec_settings, spool, make_call):
    make_call("1763867000.7")
    kept = {p.name: p.read_bytes() for p in spool.iterdir()}
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    for name, data in kept.items():  # as if the process died before clearing the spool
        (spool / name).write_bytes(data)
    assert catalog.collect(engine, rec_settings, now=LATER) == []
    assert list(spool.iterdir()) == [] and not (catalog.storage_dir(rec_settings) / "duplicates").exists()
    assert {f.status for f in catalog.paths(engine, rid).values()} == {"ok"}


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


def test_an_identical_spool_copy_of_a_stored_file_that_is_gone_or_changed_is_put_back_not_removed(
        engine, rec_settings, spool, make_call):
    make_call("1763867000.8")
    kept = {p.name: p.read_bytes() for p in spool.iterdir()}
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    files = catalog.paths(engine, rid)
    os.unlink(files["citizen"].path)  # lost from storage…
    with open(files["operator"].path, "r+b") as fh:  # …and changed in storage
        fh.seek(100)
        fh.write(b"\xff\xff")
    catalog.collect(engine, rec_settings, now=LATER)  # nothing in the spool yet: nothing to do
    with Session(engine) as s:
        from recordings import integrity

        for leg in ("citizen", "operator"):  # as a read or the sweep finds them
            integrity.recheck(s, s.get(RecordingFile, files[leg].id))
        assert s.get(Recording, rid).status == "corrupt"
    for name, data in kept.items():  # the spool's own copies, as the crash after the commit left them
        (spool / name).write_bytes(data)
    assert catalog.collect(engine, rec_settings, now=LATER) == []
    assert list(spool.iterdir()) == []
    after = catalog.paths(engine, rid)
    assert {leg: (f.status, sha(f.path) == f.sha256) for leg, f in after.items()} == {
        "mixed": ("ok", True), "citizen": ("ok", True), "operator": ("ok", True)}
    with Session(engine) as s:
        assert s.get(Recording, rid).status == "ok"
        repaired = s.exec(select(AccessLog).where(AccessLog.action == "repaired")).all()
    assert sorted(e.leg for e in repaired) == ["citizen", "operator"]
    [evidence] = (catalog.storage_dir(rec_settings) / "duplicates").glob("*/damaged-*-out.wav")
    assert sha(evidence) != after["operator"].sha256  # the changed copy kept aside, not overwritten


def test_one_call_reported_by_several_writers_at_once_is_one_recording(engine, rec_settings):
    """Two reports of one call filed at the same moment (a bridge and its successor, a retried
    outbox entry): each reads no row, both insert; the second must update instead of failing."""
    base = "hotline-20261123-101500-1763866800.7"
    errors: list[BaseException] = []

    def report() -> None:
        try:
            catalog.register_call(engine, rec_settings, call_record(base))
        except BaseException as exc:
            errors.append(exc)

    for _ in range(5):  # the race is the scheduler's: give it several chances
        at_once(*[report] * 8)
        with Session(engine) as s:
            s.exec(sa_delete(Recording))
            s.commit()
    assert errors == []
