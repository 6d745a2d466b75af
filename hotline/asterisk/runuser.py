"""Asterisk runs as its own user inside the chroot, never as root.

The chroot's ``asterisk`` package creates the user, with ids numbered inside the chroot. The
kernel knows only numbers: if that uid or gid is some host user's (on a Debian with PostgreSQL,
uid 101 is often ``postgres``), a compromised Asterisk would act as that user outside the chroot
too (signal its processes, read what it owns). :func:`ensure_ids` therefore moves the chroot's
``asterisk`` to ids that are free on both sides, once, while Asterisk is stopped.
:func:`hand_over` gives it the folders it writes (the spool with the recordings, logs, astdb, run
and cache) before every start; :func:`protect` makes a config file holding secrets readable by
root and Asterisk's group only. The app runs as root and reads the recordings whoever owns them.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hotline.settings import Settings

USER = "asterisk"
# what Asterisk writes, relative to the chroot (render.directories in mode chroot)
WRITABLE = ("var/spool/asterisk", "var/log/asterisk", "var/lib/asterisk", "var/run/asterisk", "var/cache/asterisk")
PRIVATE = ("var/spool/asterisk/monitor", "var/log/asterisk")  # recordings and security events: not for all
# Debian's dynamic system ids, taken from the top: the host's adduser hands them out from the bottom
FREE_IDS = range(999, 99, -1)
SKIP_TOP = ("proc", "sys", "dev")  # never walked: mounted, or device nodes


@dataclass(frozen=True, slots=True)
class Ids:
    uid: int
    gid: int


def _entries(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    return [line.split(":") for line in path.read_text().splitlines() if line and not line.startswith("#")]


def chroot_ids(root: Path) -> Ids | None:
    """The chroot's ``asterisk`` user and group, as numbers; None without them (no package yet)."""
    user = next((e for e in _entries(root / "etc/passwd") if e[0] == USER and len(e) > 3), None)
    group = next((e for e in _entries(root / "etc/group") if e[0] == USER and len(e) > 2), None)
    if user is None or group is None:
        return None
    return Ids(int(user[2]), int(group[2]))


def _host_uid_taken(uid: int) -> bool:
    try:
        return pwd.getpwuid(uid).pw_name != USER
    except KeyError:
        return False


def _host_gid_taken(gid: int) -> bool:
    try:
        return grp.getgrgid(gid).gr_name != USER
    except KeyError:
        return False


def ensure_ids(root: Path) -> Ids | None:
    """Make the chroot's ``asterisk`` ids nobody's on the host (renumbering its files); call only
    while no Asterisk runs in the chroot."""
    ids = chroot_ids(root)
    if ids is None or not (_host_uid_taken(ids.uid) or _host_gid_taken(ids.gid)):
        return ids
    passwd, group = _entries(root / "etc/passwd"), _entries(root / "etc/group")
    used_uids, used_gids = {int(e[2]) for e in passwd}, {int(e[2]) for e in group}
    uid, gid = ids.uid, ids.gid
    if _host_uid_taken(uid):
        uid = next(n for n in FREE_IDS if n not in used_uids and not _host_uid_taken(n))
    if _host_gid_taken(gid):
        gid = next(n for n in FREE_IDS if n not in used_gids and not _host_gid_taken(n))
    new = Ids(uid, gid)
    for e in passwd:
        if e[0] == USER:
            e[2] = str(uid)
        if e[3] == str(ids.gid):
            e[3] = str(gid)
    for e in group:
        if e[0] == USER:
            e[2] = str(gid)
    (root / "etc/passwd").write_text("".join(":".join(e) + "\n" for e in passwd))
    (root / "etc/group").write_text("".join(":".join(e) + "\n" for e in group))
    _renumber(root, ids, new)
    return new


def _walk(top: Path, skip: Iterable[str] = ()) -> Iterable[Path]:
    """Every path under ``top`` on its file system, symlinks not followed (they point at host paths)."""
    dev = top.lstat().st_dev
    yield top
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not (here == top and d in skip) and _on(here / d, dev)]
        for name in (*dirnames, *filenames):
            yield here / name


def _on(path: Path, dev: int) -> bool:
    """On the device ``dev`` (False for a path gone meanwhile)."""
    try:
        return path.lstat().st_dev == dev
    except FileNotFoundError:
        return False


def _renumber(root: Path, old: Ids, new: Ids) -> None:
    for path in _walk(root, SKIP_TOP):
        st = path.lstat()
        if st.st_uid == old.uid or st.st_gid == old.gid:
            os.chown(path, new.uid if st.st_uid == old.uid else -1, new.gid if st.st_gid == old.gid else -1,
                     follow_symlinks=False)


def hand_over(settings: Settings) -> Ids | None:
    """Give Asterisk's user what it writes (mode chroot); returns its ids, None when it runs as is."""
    if settings.asterisk_mode != "chroot":
        return None
    root = settings.asterisk_root
    ids = chroot_ids(root)
    if ids is None:
        return None
    (root / "var/spool/asterisk/monitor").mkdir(parents=True, exist_ok=True)
    for rel in WRITABLE:
        top = root / rel
        top.mkdir(parents=True, exist_ok=True)
        for path in _walk(top):
            try:
                st = path.lstat()
                if (st.st_uid, st.st_gid) != (ids.uid, ids.gid):
                    os.chown(path, ids.uid, ids.gid, follow_symlinks=False)
            except FileNotFoundError:
                continue  # a recording the catalog took from the spool meanwhile: the bridge's node runs on
    for rel in PRIVATE:
        (root / rel).chmod(0o750)
    return ids


def protect(settings: Settings, path: Path) -> None:
    """A config file with secrets: root writes it, Asterisk's group reads it, nobody else."""
    path.chmod(0o640)
    ids = chroot_ids(settings.asterisk_root) if settings.asterisk_mode == "chroot" else None
    if ids is not None and os.geteuid() == 0:
        os.chown(path, 0, ids.gid)


def run_args(settings: Settings) -> list[str]:
    """Asterisk's options to drop root right after start (mode chroot, once the user exists)."""
    if settings.asterisk_mode == "chroot" and chroot_ids(settings.asterisk_root) is not None:
        return ["-U", USER, "-G", USER]
    return []
