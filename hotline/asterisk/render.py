"""Render asterisk-config/ templates with the settings into the Asterisk config folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2

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


def lines(settings: Settings) -> list[dict[str, str]]:
    seats = [{"name": s, "label": f"Seat {s}", "password": settings.seat_password(s)} for s in settings.seats]
    depts = [{"name": d, "label": f"Dept {d}", "password": settings.seat_password(d)}
             for d in settings.department_lines]
    return seats + depts


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
        "trunk_match": "127.0.0.1",
        "pstn_port": PSTN_PORT,
        "queue_timeout": QUEUE_TIMEOUT_S,
    }
    return {t.name: env.get_template(t.name).render(context) for t in sorted(TEMPLATE_DIR.glob("*.conf"))}


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
        (target / name).write_text(text)
    (target / "manager.conf").chmod(0o640)  # it holds the AMI secret
    return target
