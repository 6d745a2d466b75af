"""recordings/integrity.py: every read a person or a worker meets checks the bytes against the
checksum the catalog took; a damaged or missing file is refused in Chinese, marked and logged, and
never served; a seeking player does not pay a hash per range."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hotline.settings import Settings
from launch.compose import web_app
from recordings import catalog, integrity, routes, worker
from recordings.models import AccessLog, Recording, RecordingFile, Transcript, TranscriptionJob
from testkit.auth import use
from tests.recordings.conftest import two_leg_call
from tests.recordings.test_catalog import call_record
from tests.recordings.test_routes import auth, granted

LATER = 10_000_000_000.0
REFUSED = "录音文件校验失败，已标记损坏，请联系管理员"


def flip_byte(path: str | Path, keep_mtime: bool = False) -> None:
    """One byte in the middle of the audio changed, the size the same (what a failing disk does)."""
    st = os.stat(path)
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0x01
    Path(path).write_bytes(bytes(data))
    if keep_mtime:  # and the mtime put back: only the ctime (which nobody can set) still tells
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("var"), ami_port=1, agi_port=1, services=[],
                        agi_job_numbers={"8001": "1024"})
    with use(TestClient(web_app(settings))) as client:
        granted(client, "qa")  # a QA duty grant: every recording may be heard by "qa"
        yield client, settings


def catalogued(client: TestClient, settings: Settings, uid: str, total_s: float = 4.0) -> int:
    base = f"hotline-20261123-101500-{uid}"
    two_leg_call(catalog.spool_dir(settings), base, [("sil", 1.0)], [("sil", 1.0)], total_s=total_s)
    rid = catalog.register_call(client.app.state.engine, settings, call_record(base, seat="8001"))
    catalog.collect(client.app.state.engine, settings, now=LATER)
    return rid


def file_row(client: TestClient, rid: int, leg: str) -> RecordingFile:
    with Session(client.app.state.engine) as s:
        return s.exec(select(RecordingFile).where(RecordingFile.recording_id == rid, RecordingFile.leg == leg)).one()


def findings(client: TestClient, rid: int) -> list[tuple[str, str, str, bool]]:
    with Session(client.app.state.engine) as s:
        return [(e.action, e.username, e.leg, e.allowed) for e in s.exec(
            select(AccessLog).where(AccessLog.recording_id == rid, AccessLog.action.in_(  # type: ignore[attr-defined]
                ("damaged", "missing", "repaired"))).order_by(AccessLog.id))]


def test_a_flipped_byte_is_refused_in_chinese_marked_and_logged_never_served(app):
    client, settings = app
    rid = catalogued(client, settings, "1763869000.1")
    assert client.get(f"/api/recordings/{rid}/audio/mixed", headers=auth("qa")).status_code == 200
    f = file_row(client, rid, "mixed")
    flip_byte(f.path)

    r = client.get(f"/api/recordings/{rid}/audio/mixed", headers=auth("qa") | {"Range": "bytes=0-1023"})
    assert r.status_code == 409 and r.json()["detail"] == f"{REFUSED}（混合录音）"
    assert b"RIFF" not in r.content  # not a byte of the file
    marked = file_row(client, rid, "mixed")
    assert (marked.status, marked.damaged_at is not None) == ("corrupt", True)
    assert marked.problem.startswith("校验失败：入库后文件被改动（入库时 SHA-256 " + f.sha256[:12])
    with Session(client.app.state.engine) as s:
        rec = s.get(Recording, rid)
    assert rec.status == "corrupt" and rec.problem.startswith("混合录音：校验失败")
    assert findings(client, rid) == [("damaged", "qa", "mixed", False)]
    assert client.get(f"/api/recordings/{rid}", headers=auth("qa")).json()["status"] == "corrupt"  # the page says so

    again = client.get(f"/api/recordings/{rid}/audio/mixed?download=1", headers=auth("qa"))
    assert again.status_code == 409 and again.json()["detail"] == f"{REFUSED}（混合录音）"
    assert len(findings(client, rid)) == 1  # marked once; the row refuses from now on without reading
    # the other legs are intact and still heard
    good = client.get(f"/api/recordings/{rid}/audio/citizen", headers=auth("qa"))
    assert good.status_code == 200 and good.content[:4] == b"RIFF"


def test_a_missing_file_is_gone_and_said_so(app):
    client, settings = app
    rid = catalogued(client, settings, "1763869000.2")
    os.unlink(file_row(client, rid, "operator").path)
    r = client.get(f"/api/recordings/{rid}/audio/operator", headers=auth("qa"))
    assert r.status_code == 410 and r.json()["detail"] == "录音文件缺失（话务员），已标记，请联系管理员"
    assert (file_row(client, rid, "operator").status, findings(client, rid)) == (
        "missing", [("missing", "qa", "operator", False)])
    peaks = client.get(f"/api/recordings/{rid}/peaks?points=50", headers=auth("qa")).json()
    assert peaks["operator"] == [] and peaks["citizen"]  # no waveform from bytes that are not there


def test_a_seeking_player_pays_one_hash_not_one_per_range(app):
    client, settings = app
    rid = catalogued(client, settings, "1763869000.3", total_s=60.0)  # ≈ 1 MB a leg
    data = Path(file_row(client, rid, "citizen").path).read_bytes()
    before = integrity.VERIFIED.hashes
    for start in (0, 200_000, 40_000, 900_000, 1):
        end = min(start + 65_535, len(data) - 1)
        r = client.get(f"/api/recordings/{rid}/audio/citizen", headers=auth("qa") | {"Range": f"bytes={start}-{end}"})
        assert r.status_code == 206 and r.content == data[start:end + 1]
    assert integrity.VERIFIED.hashes - before == 1  # the first range hashed the file; the seeks cost a stat
    assert file_row(client, rid, "citizen").checked_at is not None

    # a change that kept size and mtime is still a new ctime: hashed again, caught
    flip_byte(file_row(client, rid, "citizen").path, keep_mtime=True)
    r = client.get(f"/api/recordings/{rid}/audio/citizen", headers=auth("qa") | {"Range": "bytes=300000-300099"})
    assert r.status_code == 409 and integrity.VERIFIED.hashes - before == 2


def test_a_remembered_verdict_is_hashed_again_after_a_while(tmp_path):
    clock = [0.0]
    cache = integrity.Verified(ttl_s=600, clock=lambda: clock[0])
    path = tmp_path / "a.wav"
    path.write_bytes(b"RIFF....")
    ident = integrity.identity(path.stat())
    cache.remember(str(path), "abc", ident)
    assert cache.knows(str(path), "abc", ident) and not cache.knows(str(path), "other checksum", ident)
    clock[0] = 601  # bit rot changes no stat field: time is what makes it read again
    assert not cache.knows(str(path), "abc", ident)


def test_a_file_swapped_after_its_check_is_not_sent(app):
    client, settings = app
    rid = catalogued(client, settings, "1763869000.4")
    f = file_row(client, rid, "mixed")
    with Session(client.app.state.engine) as s:
        path, st = integrity.checked_path(s, s.get(RecordingFile, f.id))
    replacement = path.with_name("swap.tmp")
    replacement.write_bytes(b"RIFF" + b"\0" * (st.st_size - 4))  # same size, other bytes
    os.replace(replacement, path)  # renamed over it between the check and the send
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "headers": [], "asgi": {"spec_version": "2.4"}}
    asyncio.run(routes.CheckedFile(path, stat_result=st, media_type="audio/wav")(scope, receive, send))
    assert sent[0]["status"] == 409
    assert "录音文件在校验后发生了变化" in b"".join(m.get("body", b"") for m in sent[1:]).decode()


def test_the_worker_refuses_a_damaged_file_and_parks_the_job_at_once(engine, rec_settings, make_call, vosk_model):
    make_call("1763869100.1", total_s=5.0)
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    flip_byte(catalog.paths(engine, rid)["citizen"].path)

    assert worker.work(rec_settings, drain=True, poll_s=0.05) == 0  # returns: nothing left to retry
    with Session(engine) as s:
        job = s.exec(select(TranscriptionJob).where(TranscriptionJob.recording_id == rid)).one()
        assert s.get(Transcript, rid) is None  # nothing transcribed from changed bytes
        rec = s.get(Recording, rid)
        entry = s.exec(select(AccessLog).where(AccessLog.recording_id == rid)).one()
    assert (job.state, job.attempts) == ("parked", 1)  # one try: the same bytes would fail every retry
    assert job.error.startswith(integrity.UNREADABLE + "录音文件校验失败，已标记损坏，请联系管理员（来电人）")
    assert rec.status == "corrupt" and catalog.paths(engine, rid)["citizen"].status == "corrupt"
    assert (entry.action, entry.username, entry.leg) == ("damaged", "system", "citizen")


def test_the_worker_transcribes_the_bytes_it_checked(engine, rec_settings, make_call, vosk_model):
    make_call("1763869100.2", total_s=8.0)
    [rid] = catalog.collect(engine, rec_settings, now=LATER)
    c = worker.claim(engine, "integrity-test", lease_s=60)
    before = integrity.VERIFIED.hashes
    assert worker.process(engine, rec_settings, vosk_model, c, lease_s=60)
    assert integrity.VERIFIED.hashes - before == 2  # each leg read once and hashed as it was read
    with Session(engine) as s:
        assert s.get(Transcript, rid).words
    assert {f.status for f in catalog.paths(engine, rid).values()} == {"ok"}
