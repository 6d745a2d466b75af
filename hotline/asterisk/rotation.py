"""A seat's or department line's SIP password rotated while Asterisk runs: written, rendered into
pjsip.conf and reloaded (``module reload res_pjsip.so``: no restart, calls in progress go on).

Above secrets.py (the stored passwords), render.py and process.py, so that none of them needs
this one: ``hotline sip rotate`` and the admin's 分机密码 page call it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass

from hotline.asterisk import process, render, secrets
from hotline.asterisk.errors import AsteriskError
from hotline.settings import Settings

RELOAD_COMMAND = "module reload res_pjsip.so"


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """One rotation or reload at a time (the admin page and the command may act together)."""
    fd = os.open(secrets.private_folder(settings) / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@dataclass(frozen=True, slots=True)
class Rotated:
    sip: secrets.SipLine  # the line with its new password
    reloaded: bool  # False: Asterisk is not running here (mode remote, or stopped): used at its next start


def rotate(settings: Settings, line: str) -> Rotated:
    """A new password for ``line``: written, rendered into pjsip.conf and reloaded if Asterisk runs here.

    The phone's current registration stays until it refreshes it; its next REGISTER needs the
    new password. Calls in progress are not touched."""
    secrets.kind_of(settings, line)
    with _locked(settings):
        secrets.write(settings, line, secrets.new_password())
        reloaded = _reload(settings)
    return Rotated(next(sip for sip in secrets.lines(settings) if sip.line == line), reloaded)


def reload(settings: Settings) -> bool:
    """Re-render pjsip.conf from the stored passwords; True when a running Asterisk here reloaded it
    (mode ``remote``: copy ``var/asterisk/etc-remote/pjsip.conf`` to that server and reload there)."""
    with _locked(settings):
        return _reload(settings)


def _reload(settings: Settings) -> bool:
    render.write_config(settings, ("pjsip.conf",))
    if settings.asterisk_mode == "remote" or not process.status(settings).running:
        return False
    out = process.cli(settings, RELOAD_COMMAND)
    if "reloaded" not in out.lower() and "queued" not in out.lower():
        raise AsteriskError(f"Asterisk 未能重新加载 PJSIP 配置：{out.strip() or '无回应'}")
    return True
