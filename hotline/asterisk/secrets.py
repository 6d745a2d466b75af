"""Per-line SIP passwords: generated at install, read by the config renderer, rotatable one line
at a time while Asterisk runs.

Every seat (8001…) and department line (2001…) has its own random password in
``var/secrets/sip/<line>`` (file 0600, folders 0700), like the AMI secret in ``var/secrets/ami``:
never committed, never derived from the extension (the old ``s`` + extension was guessable by
anyone who read the README). The admin page and ``hotline sip`` use what is public here:

* :func:`lines` — every configured line with its password and when it was last set;
* :func:`write` — a line's new password, replaced atomically (hotline/asterisk/rotation.py
  renders and reloads it into the running Asterisk);
* :func:`weak_telephony_secrets` — what production mode refuses, one Chinese sentence a problem.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from hotline.asterisk.errors import AsteriskError
from hotline.settings import Settings

# letters and digits without look-alikes (0/O, 1/l/I): people type these into desk phones
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
LENGTH = 20  # ≈ 116 bits
MIN_LENGTH = 12  # shorter than this is reported as weak (a centre may set its own)
AMI_MIN_LENGTH = 16
# secrets seen in Asterisk samples, tutorials and this project's own past: tried first by anyone
KNOWN_SECRETS = frozenset({"hotline", "secret", "admin", "password", "amp111", "changeme", "123456", "asterisk",
                           "bench", "manager", "mysecret", "1234", "12345", "123456789"})

Kind = Literal["seat", "department"]


class UnknownLine(AsteriskError):
    """A line that is neither a configured seat nor a department line."""


@dataclass(frozen=True, slots=True)
class SipLine:
    line: str  # the extension and SIP user name: "8001"
    kind: Kind
    password: str  # "" while not generated
    changed_at: datetime | None  # when the password was generated or last rotated (UTC)

    @property
    def label(self) -> str:
        return f"坐席 {self.line}" if self.kind == "seat" else f"部门线路 {self.line}"


def sip_dir(settings: Settings) -> Path:
    return settings.secrets_dir / "sip"


def configured(settings: Settings) -> dict[str, Kind]:
    """Every line that registers with a password, in extension order of the settings."""
    out: dict[str, Kind] = {line: "seat" for line in settings.seats}
    out.update({line: "department" for line in settings.department_lines})
    return out


def kind_of(settings: Settings, line: str) -> Kind:
    kind = configured(settings).get(line)
    if kind is None:  # also keeps "../x" and other names out of the secrets folder
        raise UnknownLine(f"没有这条线路：{line!r}（坐席 {','.join(settings.seats)}；"
                          f"部门线路 {','.join(settings.department_lines)}）")
    return kind


def private_folder(settings: Settings) -> Path:
    folder = sip_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    for path in (settings.secrets_dir, folder):
        path.chmod(0o700)
    return folder


def new_password() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def write(settings: Settings, line: str, password: str) -> None:
    """Write through a private temporary file and rename: a reader sees the old or the new, never half."""
    folder = private_folder(settings)
    tmp = folder / f".{line}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    os.replace(tmp, folder / line)


def password(settings: Settings, line: str) -> str:
    """The line's current password ("" while not generated)."""
    kind_of(settings, line)
    path = sip_dir(settings) / line
    return path.read_text().strip() if path.is_file() else ""


def ensure_passwords(settings: Settings) -> list[str]:
    """Generate a password for every configured line that has none; returns those lines."""
    made = []
    for line in configured(settings):
        if not password(settings, line):
            write(settings, line, new_password())
            made.append(line)
    return made


def lines(settings: Settings) -> list[SipLine]:
    """Every configured line with its password (for the admin page and ``hotline sip list``)."""
    out = []
    for line, kind in configured(settings).items():
        path = sip_dir(settings) / line
        changed = datetime.fromtimestamp(path.stat().st_mtime, UTC) if path.is_file() else None
        out.append(SipLine(line, kind, password(settings, line), changed))
    return out


def weak_telephony_secrets(settings: Settings) -> list[str]:
    """Why the telephony credentials are unsafe for production: one Chinese sentence a problem."""
    found = []
    ami = settings.resolved_ami_secret()
    if not ami:
        found.append("AMI 密码尚未生成：请运行 hotline asterisk install")
    elif ami.lower() in KNOWN_SECRETS or len(ami) < AMI_MIN_LENGTH or ami == settings.ami_user:
        found.append(f"AMI 密码过弱（少于 {AMI_MIN_LENGTH} 位或为常见密码）：请删除 HOTLINE_AMI_SECRET 设置，"
                     "使用安装时生成的随机密码")
    seen: dict[str, str] = {}
    for sip in lines(settings):
        pw = sip.password
        if not pw:
            found.append(f"{sip.label} 的 SIP 密码尚未生成：请运行 hotline asterisk install")
        elif pw.lower() in (f"s{sip.line}", sip.line) or pw.lower() in KNOWN_SECRETS:
            found.append(f"{sip.label} 仍在使用旧的默认 SIP 密码：请运行 hotline sip rotate {sip.line}")
        elif len(pw) < MIN_LENGTH:
            found.append(f"{sip.label} 的 SIP 密码少于 {MIN_LENGTH} 位：请运行 hotline sip rotate {sip.line}")
        elif pw in seen:
            found.append(f"{sip.label} 与{seen[pw]}的 SIP 密码相同：请运行 hotline sip rotate {sip.line}")
        seen.setdefault(pw, sip.label)
    folders = [settings.secrets_dir, sip_dir(settings)]
    loose = [p for p in folders if p.is_dir() and p.stat().st_mode & 0o077]
    loose += [p for p in sip_dir(settings).glob("*") if p.is_file() and p.stat().st_mode & 0o077] \
        if sip_dir(settings).is_dir() else []
    if loose:
        found.append(f"密码文件可被其他用户读取（{', '.join(str(p) for p in loose[:3])}）："
                     "目录应为 0700、文件应为 0600")
    return found
