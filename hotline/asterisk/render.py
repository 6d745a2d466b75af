"""Render asterisk-config/ templates with the settings into the Asterisk config folder."""

from __future__ import annotations

import ipaddress
import os
import shutil
from pathlib import Path
from typing import Any

import jinja2

from hotline.asterisk import runuser, secrets
from hotline.asterisk.errors import AsteriskError
from hotline.settings import PROJECT_ROOT, Settings

TEMPLATE_DIR = PROJECT_ROOT / "asterisk-config"

# Channel variables appended to every AMI channel event (manager.conf channelvars): what the
# AGI lookup learnt travels with the call to AgentCalled, the screen-pop moment.
CHANNEL_VARS = [
    "HL_UID",  # the citizen channel's Uniqueid: one id for the call across every leg
    "HL_CALLER",  # the citizen's number, digits only
    "HL_RECBASE",  # recording base name: <base>.wav, <base>-in.wav (citizen), <base>-out.wav (operator)
    "HL_LOCATION",  # 山东省菏泽市 …
    "HL_TICKETS",  # count of the caller's recent tickets
    "HL_REPEAT",  # 1 when the number called within the repeat window
    "HL_FLAGS",  # blacklist, vip, elderly … comma separated
    "HL_PRIORITY",  # queue priority decided by the lookup
    "HL_CONF",  # the three-party bridge the channel is in
    "HL_OPEN",  # how many of the caller's tickets are still open
    "HL_OVERDUE",  # how many of the recent ones are overdue (red)
    "HL_RECENT",  # the latest tickets, newest first: number:deadline-state:status:category:title, comma separated
    "HL_JOBNO",  # the job number announced to the caller (首问负责制)
]

# rendered files that hold a secret (the AMI user's, the SIP lines'): root and Asterisk's group only
SECRET_FILES = ("manager.conf", "pjsip.conf", "http-tls.key")
QUEUE_TIMEOUT_S = 600  # how long a citizen may wait in queue before the closed/callback path
PSTN_PORT = 5090  # the simulated outside world for callbacks (a SIPp UAS in demos and tests)


def directories(settings: Settings) -> dict[str, str]:
    """Asterisk's folders as seen by the Asterisk process (inside the chroot, or under var/)."""
    if settings.asterisk_mode == "system":
        base = settings.asterisk_dir
        return {
            "etc": str(base / "etc"), "cache": str(base / "cache"), "varlib": str(base / "lib"),
            "data": "/usr/share/asterisk", "mod": "/usr/lib/x86_64-linux-gnu/asterisk/modules",
            "spool": str(base / "spool"), "run": str(base / "run"), "log": str(base / "log"),
        }
    return {
        "etc": "/etc/asterisk", "cache": "/var/cache/asterisk", "varlib": "/var/lib/asterisk",
        "data": "/usr/share/asterisk", "mod": "/usr/lib/x86_64-linux-gnu/asterisk/modules",
        "spool": "/var/spool/asterisk", "run": "/var/run/asterisk", "log": "/var/log/asterisk",
    }


def host_path(settings: Settings, asterisk_path: str) -> Path:
    """Where a path Asterisk sees lives on this machine."""
    if settings.asterisk_mode == "chroot":
        return settings.asterisk_root / asterisk_path.lstrip("/")
    return Path(asterisk_path)


def lines(settings: Settings) -> list[dict[str, Any]]:
    """Seats and department lines with their own generated passwords (hotline/asterisk/secrets.py)."""
    secrets.ensure_passwords(settings)
    browser = set(settings.browser_phone_seats)
    return [{"name": sip.line, "label": f"{'Seat' if sip.kind == 'seat' else 'Dept'} {sip.line}",
             "password": sip.password, "browser": sip.kind == "seat" and sip.line in browser}
            for sip in secrets.lines(settings)]


def ami_permit(settings: Settings) -> list[str]:
    """Who may log in to the AMI: ``HOTLINE_AMI_PERMIT`` (the app's addresses or networks), else the
    AMI host itself (the app on this box connects from the address it connects to)."""
    wanted = [a.strip() for a in settings.ami_permit.split(",") if a.strip()]
    if not wanted:
        wanted = [settings.ami_host if settings.ami_host not in ("", "0.0.0.0", "::", "localhost") else "127.0.0.1"]
    out = []
    for address in wanted:
        try:
            net = ipaddress.ip_network(address, strict=False)
        except ValueError as exc:
            raise AsteriskError(f"HOTLINE_AMI_PERMIT: {address!r} is not an address or network") from exc
        out.append(net.with_netmask if net.version == 4 else net.with_prefixlen)
    return out


def render_config(settings: Settings) -> dict[str, str]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
    )
    context = {
        "s": settings,
        "dirs": directories(settings),
        "ami_secret": settings.resolved_ami_secret(create=True),
        "channelvars": CHANNEL_VARS,
        "lines": lines(settings),
        "ami_permit": ami_permit(settings),
        "trunk_match": "127.0.0.1",
        "pstn_port": PSTN_PORT,
        "queue_timeout": QUEUE_TIMEOUT_S,
        "browser_seats": settings.browser_phone_seats,
    }
    rendered = {t.name: env.get_template(t.name).render(context) for t in sorted(TEMPLATE_DIR.glob("*.conf"))}
    if settings.browser_phone_seats and settings.tls:
        # wss:// for the browser phones with the console's own certificate, where Asterisk can read it
        rendered["http-tls.crt"] = Path(settings.tls_certfile).read_text()
        rendered["http-tls.key"] = Path(settings.tls_keyfile).read_text()
    return rendered


def config_dir(settings: Settings) -> Path:
    if settings.asterisk_mode == "remote":
        return settings.asterisk_dir / "etc-remote"  # for the operator to copy to that server
    return host_path(settings, directories(settings)["etc"])


def install_config(settings: Settings) -> Path:
    """Write the rendered files into the config folder, replacing what was there."""
    target = config_dir(settings)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, text in render_config(settings).items():
        _write(settings, target / name, text)
    return target


def write_config(settings: Settings, names: tuple[str, ...]) -> Path:
    """Rewrite only these files in place (a running Asterisk then reloads just their module)."""
    target = config_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    rendered = render_config(settings)
    for name in names:
        _write(settings, target / name, rendered[name])
    return target


def _write(settings: Settings, path: Path, text: str) -> None:
    if path.name in SECRET_FILES:
        # created private, then handed to Asterisk's group: never readable by all, not even a moment
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        runuser.protect(settings, path)
    else:
        path.write_text(text)
