"""The Asterisk process: a second, throwaway chroot on other ports, so the session's keeps running."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from hotline.asterisk import process
from hotline.settings import Settings

pytestmark = [pytest.mark.asterisk, pytest.mark.skipif(os.geteuid() != 0, reason="the chroot needs root")]


def ami_banner(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        return s.recv(100)


def test_start_mounts_only_proc_and_stop_leaves_nothing_behind(spare: Settings) -> None:
    status = process.start(spare)
    assert status.running and ami_banner(spare.ami_port).startswith(b"Asterisk Call Manager/")
    assert status.mounted == [str((spare.asterisk_root / "proc").resolve())]
    dev_null = (spare.asterisk_root / "dev" / "null").stat()
    assert stat.S_ISCHR(dev_null.st_mode) and dev_null.st_dev == spare.asterisk_root.stat().st_dev  # not a bind
    process.stop(spare)
    after = process.status(spare)
    assert not after.running and after.mounted == []
    assert not process._chroot_pids(spare.asterisk_root)


def test_deleting_var_while_asterisk_runs_touches_nothing_outside(spare: Settings, tmp_path: Path) -> None:
    sentinel = tmp_path / "outside.txt"
    sentinel.write_text("keep me")
    host_null = os.stat("/dev/null")
    process.start(spare)
    subprocess.run(["rm", "-rf", str(spare.var_dir)], capture_output=True)  # errors on proc are expected
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null").st_rdev == host_null.st_rdev
    assert os.path.exists("/dev/urandom") and sentinel.read_text() == "keep me"
    left = subprocess.run(["find", str(spare.var_dir), "-xdev", "-not", "-type", "d"], capture_output=True, text=True)
    assert left.stdout == ""  # all of var/ is gone but the mounted proc, which stop() unmounts


def test_without_root_the_message_says_what_to_do(tmp_path: Path, monkeypatch, capsys) -> None:
    from hotline.settings import get_settings
    from launch import cli

    monkeypatch.setenv("HOTLINE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    get_settings.cache_clear()
    try:
        assert cli.main(["asterisk", "start"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "needs root" in err and "HOTLINE_ASTERISK_MODE=remote" in err and "Traceback" not in err
