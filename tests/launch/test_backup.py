"""``hotline backup`` / ``hotline restore`` (launch/backup.py): a backup taken while the app runs,
restored into an empty directory, serves the same tickets, recordings and attachments; a damaged
backup and a target that already holds tickets are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from hotline.identity import Principal, Role
from hotline.settings import Settings
from launch.backup import BackupError, backup, restore
from launch.compose import web_app
from recordings import catalog
from testkit.auth import Bearer, use
from tests.recordings.conftest import two_leg_call
from tests.recordings.test_catalog import call_record

OP = Principal("op1024", Role.OPERATOR, job_number="1024")
LEAD, ADMIN = Bearer("lead", Role.LEAD), Bearer("admin", Role.ADMIN)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
LATER = 10_000_000_000.0


def settings_in(var: Path) -> Settings:
    return Settings(var_dir=var, ami_port=1, agi_port=1, services=[])


def heard(client: TestClient, rid: int) -> bytes:
    """The lead asks, the admin approves, the lead plays the mixed leg."""
    req = client.post("/api/recordings/access-requests", json={"recording_id": rid, "reason": "核对恢复"},
                      headers=LEAD).json()
    client.post(f"/api/recordings/access-requests/{req['id']}/approve", headers=ADMIN)
    audio = client.get(f"/api/recordings/{rid}/audio/mixed", headers=LEAD)
    assert audio.status_code == 200, audio.text
    return audio.content


def test_a_backup_taken_while_running_restores_into_an_empty_directory(tmp_path: Path) -> None:
    source = settings_in(tmp_path / "a")
    with use(TestClient(web_app(source))) as c:
        store = c.app.state.store
        tickets = [store.tickets.create({"caller_number": f"1395301234{i}", "category": "咨询", "title": f"路灯 {i}"},
                                        OP) for i in range(3)]
        up = c.post(f"/api/tickets/{tickets[0].id}/attachments", files={"file": ("现场.jpg", JPEG, "image/jpeg")},
                    headers=Bearer(OP))
        assert up.status_code == 201, up.text
        base = "hotline-20261123-101500-1763868000.1"
        two_leg_call(catalog.spool_dir(source), base, [("sil", 1.0)], [("sil", 1.0)], total_s=3.0)
        rid = catalog.register_call(c.app.state.engine, source, call_record(base, seat="8001"))
        catalog.collect(c.app.state.engine, source, now=LATER)
        original = heard(c, rid)
        (source.secrets_dir / "sip").mkdir(parents=True, exist_ok=True)
        (source.secrets_dir / "sip" / "8001").write_text("Kp3vRz8QmW2xYt7NbHs4\n")

        done = backup(source)  # the app is still serving: an online backup
        assert done.problems == [] and done.counts["ticket"] == 3 and done.counts["recording_file"] == 3
        assert done.folder.stat().st_mode & 0o077 == 0  # it holds secrets and citizens' data
        numbers = sorted(t.number for t in tickets)

    target = settings_in(tmp_path / "b")
    restored = restore(target, done.folder)
    assert restored.problems == [] and restored.counts == done.counts
    assert (target.secrets_dir / "sip" / "8001").read_text() == "Kp3vRz8QmW2xYt7NbHs4\n"
    assert (target.secrets_dir / "sip" / "8001").stat().st_mode & 0o077 == 0
    with use(TestClient(web_app(target))) as c:
        listed = c.get("/api/desk/tickets", headers=LEAD).json()
        assert sorted(t["number"] for t in listed["items"]) == numbers
        assert c.get(f"/api/recordings/{rid}", headers=LEAD).json()["status"] == "ok"
        with c.app.state.engine.connect() as conn:  # the stored paths followed the new storage folder
            paths = [p for (p,) in conn.execute(sa.text("SELECT path FROM recording_file"))]
        assert len(paths) == 3 and all(p.startswith(str(catalog.storage_dir(target))) for p in paths)
        assert heard(c, rid) == original  # the same audio, from the new storage folder
        [att] = c.get(f"/api/tickets/{tickets[0].id}/attachments", headers=LEAD).json()
        assert c.get(f"/api/tickets/{tickets[0].id}/attachments/{att['id']}", headers=LEAD).content == JPEG

    # a target that holds tickets is not overwritten unless forced; a damaged backup is refused whole
    with pytest.raises(BackupError, match="目标数据库中已有工单"):
        restore(target, done.folder)
    wav = next((done.folder / "recordings").rglob("*.wav"))
    wav.write_bytes(wav.read_bytes()[:-10])
    with pytest.raises(BackupError, match="备份文件缺失或已损坏"):
        restore(settings_in(tmp_path / "c"), done.folder)


def test_a_recording_changed_since_it_was_catalogued_is_reported_not_copied(tmp_path: Path) -> None:
    source = settings_in(tmp_path / "a")
    with use(TestClient(web_app(source))) as c:
        base = "hotline-20261123-101500-1763868000.2"
        two_leg_call(catalog.spool_dir(source), base, [("sil", 1.0)], [("sil", 1.0)], total_s=2.0)
        catalog.register_call(c.app.state.engine, source, call_record(base, seat="8001"))
        catalog.collect(c.app.state.engine, source, now=LATER)
    stored = next(catalog.storage_dir(source).rglob(f"{base}-in.wav"))
    stored.write_bytes(b"RIFF tampered")
    done = backup(source, tmp_path / "backup")
    assert [p for p in done.problems if "校验值不符" in p and stored.name in p]
    assert not list((tmp_path / "backup").rglob(stored.name))
    with pytest.raises(BackupError, match="备份目录不是空的"):
        backup(source, tmp_path / "backup")


@pytest.mark.postgres
def test_postgresql_is_dumped_and_restored_with_its_tickets(tmp_path: Path, postgres_server) -> None:
    source = Settings(var_dir=tmp_path / "a", ami_port=1, agi_port=1, services=[],
                      database_url=postgres_server.create_database("backup_source"))
    with use(TestClient(web_app(source))) as c:
        numbers = sorted(c.app.state.store.tickets.create(
            {"caller_number": f"1395301234{i}", "category": "咨询", "title": f"路灯 {i}"}, OP).number for i in range(2))
        done = backup(source)
    assert done.problems == [] and (done.folder / "database.pgdump").is_file() and done.counts["ticket"] == 2
    target = Settings(var_dir=tmp_path / "b", ami_port=1, agi_port=1, services=[],
                      database_url=postgres_server.create_database("backup_target"))
    with pytest.raises(BackupError, match="数据库类型"):
        restore(settings_in(tmp_path / "sqlite"), done.folder)
    assert restore(target, done.folder).counts == done.counts
    with use(TestClient(web_app(target))) as c:
        assert sorted(t["number"] for t in c.get("/api/desk/tickets", headers=LEAD).json()["items"]) == numbers


def test_the_commands_say_what_they_did(tmp_path: Path) -> None:
    from tests.launch.test_accounts_cli import hotline

    assert hotline(tmp_path / "a", "seed", "--tickets", "2").returncode == 0
    made = hotline(tmp_path / "a", "backup", "--to", str(tmp_path / "saved"))
    assert made.returncode == 0 and "备份完成" in made.stdout and "ticket 2" in made.stdout, made.stderr
    back = hotline(tmp_path / "b", "restore", str(tmp_path / "saved"))
    assert back.returncode == 0 and "恢复完成" in back.stdout and "ticket 2" in back.stdout, back.stderr
    again = hotline(tmp_path / "b", "restore", str(tmp_path / "saved"))
    assert again.returncode == 2 and "已有工单" in again.stderr
