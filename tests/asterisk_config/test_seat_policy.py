"""What a seat's phone may do on the real Asterisk: register with its own generated password (the
old ``s`` + extension fails), dial the internal plan, and nothing outside it (toll fraud). And the
Asterisk that answers runs as its own user, not root."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from hotline.asterisk import process, runuser
from hotline.asterisk.render import directories, host_path
from testkit.sip import dial, registration_refused
from tests.conftest import speech

pytestmark = pytest.mark.asterisk

OUTSIDE = "013800138000"  # a Beijing mobile with the trunk prefix: what a fraudster dials


def log_file(settings, name: str):
    return host_path(settings, directories(settings)["log"]) / name


async def wait_exit(proc, limit_s: float) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, proc.wait, limit_s)


async def until(check, within: float) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def test_a_seat_dialling_an_outside_number_is_refused_logged_and_never_leaves(pbx, ami, phones, settings,
                                                                                   audio_dir):
    seat = settings.seats[0]
    messages = log_file(settings, "messages.log")
    before = messages.stat().st_size if messages.exists() else 0
    call = dial(phones, seat, settings.seat_password(seat), OUTSIDE, "refused")
    assert await wait_exit(call, 30) == 0, call.errors()[-800:]  # early media, then 403 Forbidden
    assert await until(lambda: f"HOTLINE-REFUSED line {seat} dialled {OUTSIDE}"
                       in messages.read_text(errors="replace")[before:], 5)
    # nothing was dialled out: no channel on the outside trunk
    assert not [e for e in ami.events if str(e.get("Channel", "")).startswith("PJSIP/pstn-out")]
    assert any(str(e.get("Channel", "")).startswith(f"PJSIP/{seat}-") for e in ami.events)


async def test_a_seat_still_dials_a_department(pbx, ami, phones, settings, audio_dir):
    seat, dept = settings.seats[0], settings.department_lines[0]
    phones.seat(dept, settings.seat_password(dept), speech(audio_dir, ("sil", 30)), ring_ms=500, talk_ms=30_000)
    call = dial(phones, seat, settings.seat_password(seat), dept, "answered")
    assert await wait_exit(call, 30) == 0, call.errors()[-800:]
    assert any(str(e.get("Channel", "")).startswith(f"PJSIP/{dept}-") for e in ami.events)


async def test_the_old_derived_password_is_refused_and_the_generated_one_registers(pbx, phones, settings):
    seat = settings.seats[0]
    security = log_file(settings, "security.log")
    before = security.stat().st_size if security.exists() else 0
    generated = settings.seat_password(seat)
    assert generated and generated != f"s{seat}"
    assert await asyncio.to_thread(registration_refused, phones, seat, f"s{seat}")
    phones.register(seat, generated, phones.port(5100))  # raises unless Asterisk answers 200
    # the failure is a security event, with the account and the address, for fail2ban's asterisk jail
    assert await until(lambda: security.exists() and "ChallengeResponseFailed" in
                       security.read_text(errors="replace")[before:], 5), security
    events = [line for line in security.read_text(errors="replace")[before:].splitlines()
              if "ChallengeResponseFailed" in line]
    assert f'AccountID="{seat}"' in events[-1] and "RemoteAddress=\"IPV4/UDP/127.0.0.1/" in events[-1], events[-1]


def test_asterisk_runs_as_the_chroots_own_user_with_ids_no_host_user_has(pbx, settings):
    if settings.asterisk_mode != "chroot":
        pytest.skip("only the chroot install drops root by itself")
    ids = runuser.chroot_ids(settings.asterisk_root)
    assert ids is not None and ids.uid != 0 and ids.gid != 0
    status = Path(f"/proc/{process.status(settings).pid}/status").read_text()
    # real, effective, saved and file-system ids: all Asterisk's own, no way back to root
    uids = {int(n) for n in re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()}
    gids = {int(n) for n in re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()}
    assert (uids, gids) == ({ids.uid}, {ids.gid}), status
    assert not runuser._host_uid_taken(ids.uid) and not runuser._host_gid_taken(ids.gid)
    # what it writes is its own; the recordings and the security events are not for every local user
    for rel in runuser.PRIVATE:
        st = (settings.asterisk_root / rel).stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o007) == (ids.uid, ids.gid, 0), rel
