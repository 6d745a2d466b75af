"""``hotline sip list|rotate <line>|check``: the seats' and department lines' SIP passwords.

The passwords are generated at install into ``var/secrets/sip/`` (hotline/asterisk/secrets.py);
``rotate`` gives one line a new one and reloads it into the running Asterisk without a restart
(calls in progress go on; the phone needs the new password at its next registration).
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from typing import Any

from hotline.settings import get_settings


def _pad(text: str, width: int) -> str:
    """Left-justify to ``width`` terminal columns: a Chinese character takes two."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - used, 1)


def _sip(args: argparse.Namespace) -> int:
    from hotline.asterisk import rotation, secrets

    settings = get_settings()
    if args.action == "list":
        print(f"{_pad('线路', 8)}{_pad('类型', 10)}{_pad('密码', 24)}更新时间 (UTC)")
        for sip in secrets.lines(settings):
            kind = "坐席" if sip.kind == "seat" else "部门线路"
            changed = f"{sip.changed_at:%Y-%m-%d %H:%M}" if sip.changed_at else "—"
            print(f"{_pad(sip.line, 8)}{_pad(kind, 10)}{_pad(sip.password or '（未生成）', 24)}{changed}")
        return 0
    if args.action == "rotate":
        if not args.line:
            print("hotline sip rotate: 请给出线路号，例如 hotline sip rotate 8001", file=sys.stderr)
            return 2
        try:
            done = rotation.rotate(settings, args.line)
        except secrets.UnknownLine as exc:
            print(f"hotline sip rotate: {exc}", file=sys.stderr)
            return 2
        print(f"{done.sip.label} 的新 SIP 密码：{done.sip.password}")
        if done.reloaded:
            print("Asterisk 已重新加载 PJSIP 配置（未重启，通话不受影响）；请在话机上改用新密码重新注册。")
        elif settings.asterisk_mode == "remote":
            print(f"已写入 {settings.asterisk_dir / 'etc-remote' / 'pjsip.conf'}：请复制到 Asterisk 服务器并执行 "
                  f"{rotation.RELOAD_COMMAND}")
        else:
            print("Asterisk 未运行：下次启动时生效。")
        return 0
    problems = secrets.weak_telephony_secrets(settings)
    for p in problems:
        print(f"- {p}")
    if not problems:
        print("AMI 与 SIP 密码检查通过")
    return 1 if problems else 0


def register(subparsers: Any) -> None:
    """``hotline sip …`` on the ``hotline`` command's subparsers (launch/cli.py)."""
    p = subparsers.add_parser("sip", help="SIP passwords of seats and department lines: list, rotate, check")
    p.add_argument("action", choices=["list", "rotate", "check"],
                   help="list: every line and its password; rotate LINE: a new password, reloaded at once; "
                        "check: weak or default AMI/SIP secrets")
    p.add_argument("line", nargs="?", help="for rotate: the seat or department line, e.g. 8001")
    p.set_defaults(fn=_sip)
