"""Per-line SIP passwords: generated once, private, rotatable on the running Asterisk."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from hotline.asterisk import process, rotation, secrets
from hotline.asterisk.render import render_config
from hotline.settings import Settings
from testkit.sip import registration_refused
from tests.conftest import local_call, speech


@pytest.fixture
def fresh(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, ami_secret="", seats=["8001", "8002"], department_lines=["2001"],
                    asterisk_mode="remote")


def test_each_line_gets_its_own_random_password_once_and_privately(fresh: Settings) -> None:
    assert fresh.seat_password("8001") == ""  # nothing invented until install/render
    assert secrets.ensure_passwords(fresh) == ["8001", "8002", "2001"]
    assert secrets.ensure_passwords(fresh) == []  # kept: a second install changes nothing
    listed = secrets.lines(fresh)
    assert [(s.line, s.kind) for s in listed] == [("8001", "seat"), ("8002", "seat"), ("2001", "department")]
    passwords = [s.password for s in listed]
    assert len(set(passwords)) == 3
    assert all(len(p) == secrets.LENGTH and re.fullmatch(f"[{secrets.ALPHABET}]+", p) for p in passwords)
    assert fresh.seat_password("8001") == passwords[0]  # what tests, simulate and bench read
    folder = secrets.sip_dir(fresh)
    assert folder.stat().st_mode & 0o777 == 0o700 and fresh.secrets_dir.stat().st_mode & 0o777 == 0o700
    assert all((folder / line).stat().st_mode & 0o777 == 0o600 for line in ("8001", "8002", "2001"))
    assert listed[0].label == "坐席 8001" and listed[2].label == "部门线路 2001" and listed[0].changed_at


def test_the_renderer_writes_the_generated_passwords_into_pjsip(fresh: Settings) -> None:
    pjsip = render_config(fresh)["pjsip.conf"]
    for sip in secrets.lines(fresh):
        assert f"[{sip.line}-auth](auth-tpl)\nusername = {sip.line}\npassword = {sip.password}\n" in pjsip
    assert "password = s8001" not in pjsip


def test_rotation_writes_a_new_password_and_the_rendered_config(fresh: Settings) -> None:
    secrets.ensure_passwords(fresh)
    old = fresh.seat_password("8002")
    done = rotation.rotate(fresh, "8002")
    assert done.sip.line == "8002" and done.sip.password != old and done.reloaded is False  # mode remote
    assert fresh.seat_password("8002") == done.sip.password
    written = (fresh.asterisk_dir / "etc-remote" / "pjsip.conf")
    assert f"password = {done.sip.password}" in written.read_text() and old not in written.read_text()
    assert written.stat().st_mode & 0o777 == 0o640
    assert fresh.seat_password("8001") == secrets.lines(fresh)[0].password  # the others unchanged


def test_rotation_refuses_what_is_not_a_line(fresh: Settings) -> None:
    for bad in ("8003", "../ami", "", "trunk-in"):
        with pytest.raises(secrets.UnknownLine):
            rotation.rotate(fresh, bad)
    assert fresh.seat_password("../ami") == ""  # the accessor never reads outside the folder


def test_weak_telephony_secrets_name_each_problem_in_chinese(fresh: Settings) -> None:
    assert secrets.weak_telephony_secrets(fresh) == [
        "AMI 密码尚未生成：请运行 hotline asterisk install",
        "坐席 8001 的 SIP 密码尚未生成：请运行 hotline asterisk install",
        "坐席 8002 的 SIP 密码尚未生成：请运行 hotline asterisk install",
        "部门线路 2001 的 SIP 密码尚未生成：请运行 hotline asterisk install",
    ]
    fresh.resolved_ami_secret(create=True)
    secrets.ensure_passwords(fresh)
    assert secrets.weak_telephony_secrets(fresh) == []
    folder = secrets.sip_dir(fresh)
    (folder / "8001").write_text("s8001\n")  # the old derived password
    (folder / "8002").write_text("short\n")
    (folder / "2001").write_text("2001\n")
    weak = Settings(**{**fresh.model_dump(), "ami_secret": "amp111"})
    found = secrets.weak_telephony_secrets(weak)
    assert found[0].startswith("AMI 密码过弱")
    assert "坐席 8001 仍在使用旧的默认 SIP 密码：请运行 hotline sip rotate 8001" in found
    assert "坐席 8002 的 SIP 密码少于 12 位：请运行 hotline sip rotate 8002" in found
    assert "部门线路 2001 仍在使用旧的默认 SIP 密码：请运行 hotline sip rotate 2001" in found
    rotation.rotate(fresh, "8001")
    rotation.rotate(fresh, "2001")
    (folder / "8002").write_text((folder / "8001").read_text())
    os.chmod(folder / "2001", 0o644)
    found = secrets.weak_telephony_secrets(fresh)
    assert found[0] == "坐席 8002 与坐席 8001的 SIP 密码相同：请运行 hotline sip rotate 8002"
    assert found[1].startswith("密码文件可被其他用户读取") and len(found) == 2


@pytest.mark.asterisk
async def test_rotation_on_the_running_asterisk_old_password_out_new_in_call_goes_on(pbx, ami, phones, settings,
                                                                                     audio_dir):
    line = settings.seats[-1]
    old = settings.seat_password(line)
    pid = process.status(settings).pid
    # a call in progress on that very line: the citizen (a Local channel) talks to its phone
    phones.seat(line, old, speech(audio_dir, ("sil", 60)), ring_ms=500, talk_ms=60_000)
    pbx.sign_in(line)
    await local_call(ami, settings, "13953012345", hold_s=60, sound="silence/10")
    connect = await ami.wait_for("AgentConnect", 15, Queue=settings.queue_name)
    channels = pbx.active_channels()

    done = await asyncio.to_thread(rotation.rotate, settings, line)
    assert done.reloaded and done.sip.password != old and settings.seat_password(line) == done.sip.password

    assert await asyncio.to_thread(registration_refused, phones, line, old)  # the old one stops working
    await asyncio.to_thread(phones.register, line, done.sip.password, phones.port(5150))  # the new one works
    assert process.status(settings).pid == pid  # reloaded, not restarted
    assert pbx.active_channels() == channels  # the call went on
    hung = [e for e in ami.events if e.get("Event") == "Hangup"
            and e.get("Uniqueid") in (connect.get("Uniqueid"), connect.get("DestUniqueid"))]
    assert hung == []
