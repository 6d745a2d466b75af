"""Start, stop and talk to the Asterisk process (in the chroot, or a system one under var/).

Only ``proc`` is mounted into the chroot, and unmounted on stop: nothing of the host is bound
in, so deleting var/ can never reach outside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hotline.asterisk import runuser
from hotline.asterisk.errors import AsteriskError
from hotline.asterisk.install import chroot_has_asterisk, isolate_network, make_device_nodes, require_root
from hotline.asterisk.render import directories, host_path, install_config
from hotline.settings import Settings


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    uptime: str
    mounted: list[str]


def _base_cmd(settings: Settings) -> list[str]:
    if settings.asterisk_mode == "chroot":
        return ["chroot", str(settings.asterisk_root), "asterisk"]
    if settings.asterisk_mode == "system":
        return ["asterisk", "-C", str(settings.asterisk_dir / "etc" / "asterisk.conf")]
    raise AsteriskError("asterisk_mode=remote: this machine does not run Asterisk; use that server's CLI.")


def cli(settings: Settings, command: str, timeout: float = 10) -> str:
    """Run one CLI command through the remote console (``asterisk -rx``)."""
    try:
        proc = subprocess.run([*_base_cmd(settings), "-rx", command], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AsteriskError(f"Asterisk CLI did not answer `{command}` within {timeout} s") from exc
    return proc.stdout


def _pidfile(settings: Settings) -> Path:
    return settings.asterisk_dir / "asterisk.pid"


def _mounts(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(prefix)]


def _chroot_pids(root: Path) -> list[int]:
    """Every process whose root is our chroot, whoever started it (an orphan from an earlier run too)."""
    want = str(root.resolve())
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/root") == want:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has exited; reap it if it is our child
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(") ", 1)[1].startswith("Z"):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                return False
    except OSError:
        return False
    return True


def _read_pid(settings: Settings) -> int | None:
    try:
        return int(_pidfile(settings).read_text())
    except (OSError, ValueError):
        return None


def status(settings: Settings) -> Status:
    pid = _read_pid(settings)
    running = _alive(pid)
    uptime = cli(settings, "core show uptime seconds").strip() if running else ""
    mounted = _mounts(settings.asterisk_root) if settings.asterisk_mode == "chroot" else []
    return Status(running, pid if running else None, uptime, mounted)


def _prepare_chroot(settings: Settings) -> None:
    root = settings.asterisk_root
    require_root("Starting the chrooted Asterisk")
    if not chroot_has_asterisk(root):
        raise AsteriskError("Asterisk is not installed: run `make setup` (or `hotline asterisk install`).")
    make_device_nodes(root)
    isolate_network(root)
    proc_dir = root / "proc"
    proc_dir.mkdir(exist_ok=True)
    if str(proc_dir.resolve()) not in _mounts(root):
        subprocess.run(["mount", "-t", "proc", "proc", str(proc_dir)], check=True)
    subprocess.run(["chroot", str(root), "sh", "-c",
                    "mkdir -p /var/run/asterisk && chown asterisk: /var/run/asterisk"], check=True)


def _prepare_system(settings: Settings) -> None:
    for key in ("cache", "varlib", "spool", "run", "log"):
        Path(directories(settings)[key]).mkdir(parents=True, exist_ok=True)
    (Path(directories(settings)["spool"]) / "monitor").mkdir(exist_ok=True)


def start(settings: Settings, boot_timeout: float = 30) -> Status:
    """Render the config, start Asterisk in the background and wait until it is fully booted."""
    current = status(settings)
    if current.running:
        return current
    if settings.asterisk_mode == "chroot":
        _prepare_chroot(settings)
        for pid in _chroot_pids(settings.asterisk_root):  # an orphan would hold the ports
            os.kill(pid, signal.SIGKILL)
        runuser.ensure_ids(settings.asterisk_root)  # nothing runs in the chroot now: safe to renumber
    else:
        _prepare_system(settings)
    install_config(settings)
    from hotline.asterisk.prompts import install_prompts

    install_prompts(settings, log=lambda _msg: None)
    (host_path(settings, directories(settings)["spool"]) / "monitor").mkdir(parents=True, exist_ok=True)
    settings.asterisk_events_dir.mkdir(parents=True, exist_ok=True)  # cel_custom does not make it
    runuser.hand_over(settings)
    log_path = settings.asterisk_dir / "console.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        # -U/-G: Asterisk drops root for its own user once started; umask 027: recordings and logs
        # are its own and its group's, not every local user's
        proc = subprocess.Popen([*_base_cmd(settings), *runuser.run_args(settings), "-f", "-n", "-vvv"],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                umask=0o027)
    _pidfile(settings).write_text(str(proc.pid))
    deadline = time.monotonic() + boot_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AsteriskError(f"Asterisk exited at start (code {proc.returncode}); see {log_path}")
        try:
            if "fully booted" in cli(settings, "core waitfullybooted", timeout=5).lower():
                return status(settings)
        except AsteriskError:
            pass
        time.sleep(0.1)
    stop(settings)
    raise AsteriskError(f"Asterisk did not boot within {boot_timeout} s; see {log_path}")


def stop(settings: Settings, timeout: float = 10) -> None:
    """Stop Asterisk, kill anything left in the chroot, and unmount: nothing left behind."""
    pid = _read_pid(settings)
    if _alive(pid):
        with contextlib.suppress(AsteriskError):
            cli(settings, "core stop now", timeout=5)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid) and pid:
            os.kill(pid, signal.SIGKILL)
    if settings.asterisk_mode == "chroot":
        root = settings.asterisk_root
        for other in _chroot_pids(root):
            os.kill(other, signal.SIGKILL)
        for mount in sorted(_mounts(root), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
    _pidfile(settings).unlink(missing_ok=True)


def interactive_cli(settings: Settings) -> int:
    return subprocess.call([*_base_cmd(settings), "-r"])
