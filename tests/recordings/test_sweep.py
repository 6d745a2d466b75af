"""recordings/sweep.py: stored files re-read in turn (bounded work a pass), storage compared with
the catalog — orphans listed, files gone found, an orphan that is a missing file's bytes re-linked."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from sqlmodel import Session, select

from recordings import catalog, integrity, service, worker
from recordings.models import AccessLog, Recording, RecordingFile, RecordingOrphan, TranscriptionJob
from recordings.sweep import Sweeper
from tests.recordings.conftest import leg
from tests.recordings.test_integrity import flip_byte

LATER = 10_000_000_000.0


def stored(engine, rec_settings, make_call, uid: str) -> int:
    make_call(uid, total_s=3.0)
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    return rid


def orphans(engine) -> dict[str, str]:
    with Session(engine) as s:
        return {Path(o.path).name: o.note for o in s.exec(select(RecordingOrphan))}


def audit(engine, rid: int) -> list[tuple[str, str, str]]:
    with Session(engine) as s:
        return [(e.action, e.username, e.leg) for e in s.exec(select(AccessLog).where(
            AccessLog.recording_id == rid).order_by(AccessLog.id))]


def test_a_file_no_row_refers_to_is_an_orphan_listed_until_it_goes(engine, rec_settings, make_call):
    rid = stored(engine, rec_settings, make_call, "1763870000.1")
    day = Path(catalog.paths(engine, rid)["mixed"].path).parent
    stray = leg(day / "hotline-20251123-101500-1763870099.9.wav", [("sil", 1.0)], 1.0)
    done = Sweeper(engine, rec_settings).run()
    assert (done.checked, done.orphans, done.folders) == (3, 1, ["2025/11/23"])
    assert orphans(engine) == {stray.name: "目录中无此录音"}
    health = service.integrity(engine)
    assert (health["state"], health["orphans"], health["files_ok"], health["unchecked"]) == ("ok", 1, 3, 0)
    assert health["detail"] == "录音文件 3 个正常 · 1 个孤立文件（目录中无记录）"
    assert stray.exists()  # reported, left for a person to decide

    stray.unlink()
    assert Sweeper(engine, rec_settings).run().orphans == 0 and orphans(engine) == {}


def test_a_stored_file_that_is_gone_is_found_marked_and_reported(engine, rec_settings, make_call):
    rid = stored(engine, rec_settings, make_call, "1763870000.2")
    os.unlink(catalog.paths(engine, rid)["operator"].path)
    done = Sweeper(engine, rec_settings).run()
    assert (done.checked, done.missing, done.corrupt, done.orphans) == (3, 1, 0, 0)
    f = catalog.paths(engine, rid)["operator"]
    assert (f.status, f.problem, f.damaged_at is not None) == ("missing", integrity.GONE, True)
    with Session(engine) as s:
        assert s.get(Recording, rid).status == "missing"
    assert audit(engine, rid) == [("missing", "system", "operator")]
    health = service.integrity(engine)
    assert (health["state"], health["missing"]) == ("down", 1)
    assert health["detail"] == "录音文件 2 个正常 · 1 个入库后丢失 · 请从备份恢复"


def test_an_orphan_with_the_name_and_bytes_of_a_missing_file_is_relinked(engine, rec_settings, make_call):
    rid = stored(engine, rec_settings, make_call, "1763870000.3")
    old = Path(catalog.paths(engine, rid)["mixed"].path)
    moved = catalog.storage_dir(rec_settings) / "2025" / "11" / "24" / old.name  # someone moved it
    moved.parent.mkdir(parents=True)
    shutil.move(old, moved)
    done = Sweeper(engine, rec_settings).run()  # found gone, then found elsewhere, the same bytes
    assert (done.missing, done.repaired, done.orphans) == (1, 1, 0)
    f = catalog.paths(engine, rid)["mixed"]
    assert (f.path, f.status, f.damaged_at) == (str(moved), "ok", None)
    with Session(engine) as s:
        assert (s.get(Recording, rid).status, s.get(Recording, rid).problem) == ("ok", "")
    assert audit(engine, rid) == [("missing", "system", "mixed"), ("repaired", "system", "mixed")]
    assert service.integrity(engine)["state"] == "ok"


def test_an_orphan_with_the_name_but_not_the_bytes_stays_an_orphan(engine, rec_settings, make_call):
    rid = stored(engine, rec_settings, make_call, "1763870000.4")
    old = Path(catalog.paths(engine, rid)["citizen"].path)
    old.unlink()
    elsewhere = catalog.storage_dir(rec_settings) / "2025" / "11" / "25"
    elsewhere.mkdir(parents=True)
    other = leg(elsewhere / old.name, [("sil", 2.0)], 2.0)
    done = Sweeper(engine, rec_settings).run()
    assert (done.missing, done.repaired, done.orphans) == (1, 0, 1)
    assert orphans(engine) == {other.name: "同名录音文件缺失或损坏，但此文件与入库时的校验值不符"}
    assert catalog.paths(engine, rid)["citizen"].status == "missing"


def test_each_pass_is_bounded_and_starts_with_the_files_checked_longest_ago(engine, rec_settings, make_call):
    for i in range(3):
        stored(engine, rec_settings, make_call, f"1763870100.{i}")
    with Session(engine) as s:  # as if catalogued before checks were kept: never checked
        for f in s.exec(select(RecordingFile)):
            f.checked_at = None
            s.add(f)
        s.commit()
    sweeper = Sweeper(engine, rec_settings, budget_files=4)
    seen: list[set[int]] = []
    for _ in range(3):
        before = {f.id: f.checked_at for f in _files(engine)}
        assert sweeper.run().checked == 4
        seen.append({f.id for f in _files(engine) if f.checked_at != before[f.id]})
    assert [len(s) for s in seen] == [4, 4, 4] and seen[0].isdisjoint(seen[1])  # the third wraps to the oldest
    assert seen[0] | seen[1] | seen[2] == {f.id for f in _files(engine)}
    one_file = Sweeper(engine, rec_settings, budget_bytes=1).run()  # a byte budget: still one file a pass
    assert one_file.checked == 1


def _files(engine) -> list[RecordingFile]:
    with Session(engine) as s:
        return list(s.exec(select(RecordingFile).order_by(RecordingFile.id)))


def test_a_damaged_file_restored_from_a_backup_is_ok_again_and_transcribed(engine, rec_settings, make_call,
                                                                           vosk_model):
    rid = stored(engine, rec_settings, make_call, "1763870200.1")
    path = catalog.paths(engine, rid)["operator"].path
    good = Path(path).read_bytes()
    flip_byte(path)
    worker.work(rec_settings, drain=True, poll_s=0.05)  # refuses it: parked, marked
    with Session(engine) as s:
        assert s.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == rid)).one().state == "parked"
    assert Sweeper(engine, rec_settings).run().repaired == 0  # still changed: stays marked

    Path(path).write_bytes(good)  # an admin puts the backup's copy back
    assert Sweeper(engine, rec_settings).run().repaired == 1
    with Session(engine) as s:
        job = s.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == rid)).one()
        assert s.get(Recording, rid).status == "ok"
    assert (job.state, job.attempts, job.error) == ("queued", 0, "")  # back in the queue by itself
    assert [a for a, _, _ in audit(engine, rid)] == ["damaged", "repaired"]


async def test_the_catalog_loop_runs_the_sweep(engine, rec_settings, spool):
    day = catalog.storage_dir(rec_settings) / "2025" / "11" / "23"
    day.mkdir(parents=True)
    stray = leg(day / "hotline-20251123-101500-1763870300.1.wav", [("sil", 1.0)], 1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(service.catalog_loop(rec_settings, engine, every_s=0.05, stop=stop, sweep_every_s=0))
    try:
        for _ in range(200):
            if orphans(engine):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert orphans(engine) == {stray.name: "目录中无此录音"}


@pytest.mark.postgres
def test_the_sweep_and_its_figures_on_postgresql(postgres_server, rec_settings, spool, make_call):
    from recordings.db import make_engine, migrate
    from ticketing.db import migrate as migrate_ticketing

    engine = make_engine(postgres_server.create_database())
    try:
        migrate_ticketing(engine)
        migrate(engine)
        rid = stored(engine, rec_settings, make_call, "1763870400.1")
        os.unlink(catalog.paths(engine, rid)["citizen"].path)
        day = Path(catalog.paths(engine, rid)["mixed"].path).parent
        leg(day / "hotline-20251123-101500-1763870499.9.wav", [("sil", 1.0)], 1.0)
        done = Sweeper(engine, rec_settings).run()
        assert (done.checked, done.missing, done.orphans) == (3, 1, 1)
        health = service.integrity(engine)
        assert (health["state"], health["missing"], health["orphans"], health["files_ok"]) == ("down", 1, 1, 2)
        assert health["oldest_check"] is not None
    finally:
        engine.dispose()
