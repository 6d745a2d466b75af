"""Install Asterisk 22 into a Debian-testing chroot under var/ (or adopt one already on the machine).

Debian 12 has no ``asterisk`` package; testing (forky) and sid do. debootstrap builds a minimal
root with it in about a minute. The mirror comes from the machine's own apt sources, never a
hard-coded host. Nothing of the host is bind-mounted into the chroot: deleting ``var/`` must
never be able to reach the machine's device nodes, so the few nodes Asterisk needs are created
with mknod inside the chroot.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from hotline.asterisk.errors import AsteriskError
from hotline.settings import Settings

CHROOT_PACKAGES = ["asterisk", "asterisk-core-sounds-en-gsm", "asterisk-modules"]

# name → (major, minor) of the character devices Asterisk opens
DEVICE_NODES = {"null": (1, 3), "zero": (1, 5), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}

Log = Callable[[str], None]


def apt_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The first non-security Debian mirror named in the machine's apt sources (deb822 or one-line)."""
    candidates: list[str] = []
    for path in sorted(apt_dir.glob("sources.list.d/*.sources")):
        candidates += re.findall(r"^URIs:\s*(\S+)", path.read_text(), flags=re.M)
    for path in [apt_dir / "sources.list", *sorted(apt_dir.glob("sources.list.d/*.list"))]:
        if path.exists():
            candidates += re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", path.read_text(), flags=re.M)
    for uri in candidates:
        if "security" not in uri and uri.startswith(("http://", "https://", "file:/")):
            return uri
    raise AsteriskError(
        "No Debian mirror found in /etc/apt sources; add one (or set HOTLINE_ASTERISK_MODE=system "
        "with an Asterisk already installed)."
    )


def chroot_has_asterisk(root: Path) -> bool:
    return (root / "usr/sbin/asterisk").exists()


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise AsteriskError(
            f"{what} needs root (debootstrap, chroot and mount). Run it as root, or point the "
            "project at an Asterisk you run yourself: HOTLINE_ASTERISK_MODE=remote with "
            "HOTLINE_AMI_HOST/HOTLINE_AMI_SECRET/HOTLINE_AGI_HOST."
        )


def debootstrap(root: Path, suites: list[str], mirror: str, log: Log) -> str:
    """Build the chroot with the first suite that works; returns the suite used."""
    if shutil.which("debootstrap") is None:
        raise AsteriskError("debootstrap is missing: apt-get install debootstrap (make setup does it).")
    script = Path("/usr/share/debootstrap/scripts/sid")  # testing/sid share one script
    errors = []
    for suite in suites:
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        log(f"debootstrap {suite} from {mirror} (about a minute)…")
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(CHROOT_PACKAGES)}", suite,
               str(partial), mirror]
        if script.exists():
            cmd.append(str(script))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0 and chroot_has_asterisk(partial):
            partial.rename(root)
            return suite
        errors.append(f"{suite}: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        shutil.rmtree(partial, ignore_errors=True)
    raise AsteriskError("debootstrap failed for every suite: " + "; ".join(errors))


def make_device_nodes(root: Path) -> None:
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    for name, (major, minor) in DEVICE_NODES.items():
        node = dev / name
        if node.is_symlink() or (node.exists() and not stat.S_ISCHR(node.stat().st_mode)):
            node.unlink()
        if not node.exists():
            os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            node.chmod(0o666)


def isolate_network(root: Path) -> None:
    """No DNS off the box: Asterisk resolves names for RTP otherwise (5 s stalls, traffic off loopback)."""
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")
    hostname = os.uname().nodename
    (root / "etc/hosts").write_text(f"127.0.0.1 localhost {hostname}\n::1 localhost\n")


def asterisk_version(root: Path) -> str:
    proc = subprocess.run(["chroot", str(root), "asterisk", "-V"], capture_output=True, text=True)
    return proc.stdout.strip()


def install(settings: Settings, log: Log = print) -> None:
    """Make an Asterisk 22 usable per ``settings.asterisk_mode``; idempotent and quick the second time."""
    from hotline.asterisk import prompts, render, runuser, secrets  # late: jinja2/espeak when needed

    settings.resolved_ami_secret(create=True)
    made = secrets.ensure_passwords(settings)  # each seat's and department line's own, in var/secrets/sip
    if made:
        log(f"SIP passwords generated for {len(made)} lines in {secrets.sip_dir(settings)} (hotline sip list)")
    if settings.asterisk_mode == "remote":
        log("asterisk_mode=remote: nothing to install here; render the config with "
            "`hotline asterisk config` and install it on that server.")
        return
    if settings.asterisk_mode == "system":
        if shutil.which("asterisk") is None:
            raise AsteriskError("HOTLINE_ASTERISK_MODE=system but no `asterisk` binary is on PATH.")
    else:
        require_root("Installing Asterisk into a chroot")
        root = settings.asterisk_root
        root.parent.mkdir(parents=True, exist_ok=True)
        if not chroot_has_asterisk(root):
            suite = debootstrap(root, settings.asterisk_suites, apt_mirror(), log)
            log(f"chroot ready ({suite}): {asterisk_version(root)}")
        make_device_nodes(root)
        isolate_network(root)  # Asterisk's own ids are made safe at its start (process.start), when it is stopped
    render.install_config(settings)
    prompts.install_prompts(settings, log)
    if runuser.hand_over(settings) is not None:
        log(f"Asterisk runs as the chroot's user {runuser.USER!r}; its spool, logs and database are its own.")
    log("Asterisk installed; config rendered.")
