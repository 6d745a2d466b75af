"""``hotline sip list|rotate|check`` as the admin runs it on the server: what it prints, its exit code."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hotline.asterisk import secrets
from hotline.settings import Settings
from launch import sip_cli


@pytest.fixture
def settings(tmp_path: Path, monkeypatch) -> Settings:
    s = Settings(var_dir=tmp_path, ami_secret="", seats=["8001", "8002"], department_lines=["2001"],
                 asterisk_mode="remote")
    monkeypatch.setattr(sip_cli, "get_settings", lambda: s)
    return s


def hotline_sip(*argv: str) -> int:
    p = argparse.ArgumentParser(prog="hotline")
    sip_cli.register(p.add_subparsers())
    args = p.parse_args(["sip", *argv])
    return args.fn(args)


def test_check_names_what_is_missing_until_install_then_passes(settings: Settings, capsys) -> None:
    assert hotline_sip("check") == 1
    out = capsys.readouterr().out
    assert "AMI 密码尚未生成" in out and "坐席 8001 的 SIP 密码尚未生成" in out
    settings.resolved_ami_secret(create=True)
    secrets.ensure_passwords(settings)
    assert hotline_sip("check") == 0
    assert "检查通过" in capsys.readouterr().out


def test_list_shows_every_line_and_rotate_prints_the_new_password_once(settings: Settings, capsys) -> None:
    secrets.ensure_passwords(settings)
    old = settings.seat_password("8001")
    assert hotline_sip("list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert [row.split()[:2] for row in listed[1:]] == [["8001", "坐席"], ["8002", "坐席"], ["2001", "部门线路"]]
    assert old in listed[1]

    assert hotline_sip("rotate", "8001") == 0
    out = capsys.readouterr().out
    new = settings.seat_password("8001")
    assert new != old and f"坐席 8001 的新 SIP 密码：{new}" in out
    assert "etc-remote" in out  # mode remote: where the rendered pjsip.conf is, to copy to that server


def test_rotate_refuses_an_unknown_or_missing_line(settings: Settings, capsys) -> None:
    assert hotline_sip("rotate", "../ami") == 2
    assert "没有这条线路" in capsys.readouterr().err
    assert hotline_sip("rotate") == 2
    assert "请给出线路号" in capsys.readouterr().err
    assert not secrets.sip_dir(settings).exists()  # nothing written, nothing generated
