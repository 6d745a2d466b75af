"""The whole hotline on its own copy of the Asterisk chroot: for the load benchmark and the fault suite.

:class:`Stack` copies the installed chroot into a throwaway var folder (its own database,
recordings, secrets and outbox) and runs it on ports of its own, so it collides neither with a
developer's ``make run`` nor with the test session's Asterisk: Asterisk first, then the services
as separate processes of the ``hotline`` command, each in its own session so that it can be
killed by its pid alone:

* topology ``split`` (default): ``hotline web`` (no in-process services), ``hotline cti`` (the
  bridge, the call-log writer and the recordings catalog), ``hotline agi`` and ``hotline
  transcribe -w N``: each process's CPU is its own;
* topology ``up``: ``hotline web`` with the bridge and FastAGI in-process, and ``hotline
  transcribe`` beside it: what ``hotline up`` starts (it runs the same two);
* topology ``asterisk``: Asterisk alone, the caller's own services added with :meth:`Stack.spawn`
  (a server of a centre of several, on the seats given: tests/launch/test_centre_nodes.py). Stacks
  made in a row claim their ports, so two never pick the same ones before either has bound them.

A supervisor thread restarts a service that died, at once, as systemd's ``Restart=always``
would; :meth:`Stack.kill` is ``kill -9`` of one service (or one transcription worker) and the
readiness probes say when it answers again. :class:`CpuMeter` reads each process's CPU from
``/proc/<pid>/stat``. Only processes started here are signalled, by pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hotline.asterisk import process
from hotline.asterisk.install import chroot_has_asterisk
from hotline.settings import Settings
from testkit import ROOT

# one real-Asterisk session at a time on this box: the test sessions (tests/conftest.py), the soak, the bench
MACHINE_LOCK = Path(tempfile.gettempdir()) / "hotline-asterisk-tests.lock"
TICK = os.sysconf("SC_CLK_TCK")
LEAD = ("lead", "demolead")  # README's demo logins (demo mode)
OPERATOR = ("op1024", "demo1024")


@contextlib.contextmanager
def machine_lock(say: Callable[[str], None] = print) -> Iterator[None]:
    """Wait for (then hold) the machine-wide real-Asterisk lock the test sessions take."""
    with open(MACHINE_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another real-Asterisk session ({MACHINE_LOCK})…")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_CLAIMED: set[tuple[int, int]] = set()  # (kind, port) taken by this process's stacks, maybe not bound yet


def free_port(start: int, kind: int = socket.SOCK_STREAM, span: int = 1, into: set[tuple[int, int]] | None = None,
              reserve: int = 0) -> int:
    """The first port ≥ ``start`` with ``span`` ports free (TCP or UDP) from there and unclaimed; with
    ``into``, claims ``reserve`` ports (default ``span``) from it, noted there too (stacks are made in one thread)."""
    port = start
    while port + span < 65000:
        block = {(kind, p) for p in range(port, port + (reserve or span))}
        if not block & _CLAIMED and all(_free(p, kind) for p in range(port, port + span)):
            if into is not None:
                _CLAIMED.update(block)
                into.update(block)
            return port
        port += span
    raise RuntimeError(f"no free ports from {start}")


def seat_names(n: int) -> list[str]:
    """``n`` seat extensions: 8001, 8002… (past 8099 the numbering simply goes on: 8100…)."""
    return [str(8000 + i) for i in range(1, n + 1)]


@dataclass
class Service:
    """One ``hotline`` process, restartable; its output appended to ``log``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    restart: bool = True  # the stack's supervisor starts it again when it dies
    popen: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    deaths: list[float] = field(default_factory=list)  # monotonic times it was found dead

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.started = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None

    def dead(self) -> bool:
        return self.popen is not None and self.popen.poll() is not None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (transcription workers finish the recording in hand), then SIGKILL to its group."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # its own group: a worker it left behind


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(") ", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one live process (all its threads), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


class CpuMeter:
    """CPU seconds per name, summed over the processes ``pids()`` names at each sample (every
    ``every_s``): a restarted process's new pid just continues its name's total."""

    def __init__(self, pids: Callable[[], dict[str, list[int]]], every_s: float = 0.5) -> None:
        self.pids = pids
        self.every_s = every_s
        self.totals: dict[str, float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def start(self) -> CpuMeter:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def sample(self) -> None:
        try:
            named = self.pids()
        except Exception:  # a probe racing a restart: the next sample catches up
            return
        with self._lock:
            first = not self._last
            for name, pids in named.items():
                self.totals.setdefault(name, 0.0)
                for pid in pids:
                    now = cpu_seconds(pid)
                    if now is None:
                        continue
                    # a pid first seen: its CPU so far counts (it started since), except at the first sample
                    before = self._last.get((name, pid), now if first else 0.0)
                    self.totals[name] += max(0.0, now - before)
                    self._last[(name, pid)] = now

    def snapshot(self) -> tuple[float, dict[str, float]]:
        self.sample()
        with self._lock:
            return time.monotonic(), dict(self.totals)

    @staticmethod
    def percent(a: tuple[float, dict[str, float]], b: tuple[float, dict[str, float]]) -> dict[str, float]:
        """% of one core per name between two snapshots."""
        wall = max(1e-6, b[0] - a[0])
        return {k: 100.0 * (b[1][k] - a[1].get(k, 0.0)) / wall for k in b[1]}


class Stack:
    """Asterisk and the hotline services on a copy of the installed chroot; see the module docstring."""

    def __init__(self, base: Settings, *, seats: int | list[str], topology: str = "split", workers: int = 2,
                 wrapup_s: float = 3.0, lease_s: int = 20, folder: Path | None = None, systemname: str = "",
                 say: Callable[[str], None] = print, extra: dict[str, Any] | None = None) -> None:
        if topology not in ("split", "up", "asterisk"):
            raise ValueError(f"topology {topology!r}: split, up or asterisk")
        self.base, self.topology, self.workers, self.say = base, topology, workers, say
        self.var = folder or Path(tempfile.mkdtemp(prefix="stack-", dir=_scratch(base)))
        self.seats = seat_names(seats) if isinstance(seats, int) else list(seats)
        self.ports: set[tuple[int, int]] = set()  # claimed for this stack; given back by remove()
        web, udp = free_port(8600, into=self.ports), socket.SOCK_DGRAM
        self.fields: dict[str, Any] = {
            "var_dir": self.var, "mode": "demo", "sip_port": free_port(5160, udp, into=self.ports),
            "ami_port": free_port(5140, into=self.ports), "agi_port": free_port(4673, into=self.ports),
            "web_port": web, "rtp_start": (rtp := free_port(22000, udp, 200, self.ports, 2000)), "rtp_end": rtp + 1999,
            "seats": self.seats, "browser_seats": [],  # SIPp bots answer every seat of a stack
            "cti_wrapup_s": wrapup_s, "transcribe_workers": workers,
            "transcribe_lease_s": lease_s,
            # Asterisk's own records compared with the call log often, where that comparison exists
            "witness_check_s": 5, "witness_grace_s": 5,
            "asterisk_systemname": systemname,  # one server of a centre of several names itself
        }
        self.fields.update(extra or {})  # any other setting of this stack's, by name
        self.settings = Settings(**{k: v for k, v in self.fields.items() if k in Settings.model_fields})
        self.url = f"http://127.0.0.1:{web}"
        self.services: dict[str, Service] = {}
        self._supervising = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._stopping: set[str] = set()
        self._lead: dict[str, str] | None = None

    # ------------------------------------------------------------------ set-up
    def env(self, services: str, **overrides: Any) -> dict[str, str]:
        """The environment of a service: the stack's settings (with ``overrides``, by setting name),
        nothing of the caller's HOTLINE_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        for key, value in (self.fields | overrides).items():
            # lists as JSON: every list setting reads it (the comma form is only for some)
            env[f"HOTLINE_{key.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
        env["HOTLINE_SERVICES"] = services
        env["PYTHONPATH"] = str(ROOT)
        return env

    def prepare(self) -> None:
        """Copy the installed chroot (nothing of the host mounted in it), with an empty spool and no
        logs of the original's calls; the prompts cache comes along so no prompt is spoken again."""
        src = self.base.asterisk_root
        if not chroot_has_asterisk(src):
            raise RuntimeError("Asterisk is not installed: run `make setup` first")
        (self.var / "asterisk").mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", "--one-file-system", str(src), str(self.settings.asterisk_root)], check=True)
        root = self.settings.asterisk_root
        for leftover in ("var/spool/asterisk/monitor", "var/log/asterisk", "var/spool/asterisk/outgoing"):
            folder = root / leftover
            if folder.is_dir():
                for item in folder.iterdir():
                    if item.is_dir() and not item.is_symlink():
                        shutil.rmtree(item)
                    else:
                        item.unlink()
        for cache in ("prompts-cache", "prompts"):
            if (self.base.var_dir / cache).is_dir():
                shutil.copytree(self.base.var_dir / cache, self.var / cache, dirs_exist_ok=True)
        (self.var / "logs").mkdir(exist_ok=True)

    def start(self, timeout: float = 90) -> None:
        """Asterisk, then the services; returns once each answers."""
        process.start(self.settings)
        hotline = [sys.executable, "-m", "launch.cli"]
        workers = ["transcribe", "-w", str(self.workers)]
        if self.topology == "split":
            plan = {"web": (["web"], ""), "cti": (["cti"], "cti"), "agi": (["agi"], "agi"),
                    "transcribe": (workers, "")}
        elif self.topology == "up":
            plan = {"web": (["web"], "cti,agi"), "transcribe": (workers, "")}
        else:
            plan = {}  # Asterisk alone: the caller spawns the services
        deadline = time.monotonic() + timeout
        for name, (args, services) in plan.items():
            log = self.var / "logs" / f"{name}.log"
            self.services[name] = Service(name, [*hotline, *args], self.env(services), log)
            self.services[name].start()
            if name == "web":  # it creates every table: the others started at once raced it on a new database
                self._wait(self.web_ready, deadline)
        self._supervisor = threading.Thread(target=self._supervise, name="stack-supervisor", daemon=True)
        self._supervising.set()
        self._supervisor.start()
        for probe in (self.web_ready, self.bridge_ready, self.agi_ready, self.workers_ready) if plan else ():
            self._wait(probe, deadline)

    def spawn(self, name: str, args: list[str], *, services: str = "", restart: bool = False,
              **overrides: Any) -> Service:
        """One more ``hotline`` process (``args``: ``["cti"]``…) on this stack's settings with ``overrides``
        (its own ``var_dir``, the centre's ``database_url``…), restarted if it dies only if ``restart``."""
        (self.var / "logs").mkdir(parents=True, exist_ok=True)
        svc = self.services[name] = Service(name, [sys.executable, "-m", "launch.cli", *args],
                                            self.env(services, **overrides), self.var / "logs" / f"{name}.log", restart)
        svc.start()
        return svc

    def _wait(self, probe: Callable[[], bool], deadline: float) -> None:
        while not probe():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack did not come up ({probe.__name__}); logs in {self.var / 'logs'}")
            time.sleep(0.2)


    def _supervise(self) -> None:
        while self._supervising.is_set():
            for name, svc in list(self.services.items()):
                if svc.restart and name not in self._stopping and svc.dead():
                    svc.deaths.append(time.monotonic())
                    svc.restarts += 1
                    svc.start()
            time.sleep(0.05)

    def stop(self) -> None:
        """Every service (SIGTERM, then SIGKILL), then Asterisk; nothing of it left running or mounted."""
        self._supervising.clear()
        if self._supervisor is not None:
            self._supervisor.join(5)
        for name in list(self.services):  # in the order they started (web, cti, agi, transcribe)
            self._stopping.add(name)
            self.services[name].stop()
        process.stop(self.settings)

    def remove(self, keep: Path | None = None) -> None:
        """Delete the stack's folder (never across a mount: Asterisk's /proc is unmounted by stop),
        keeping the services' and Asterisk's logs in ``keep`` first if given."""
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            if (self.var / "logs").is_dir():
                shutil.copytree(self.var / "logs", keep, dirs_exist_ok=True)
            for log in (self.settings.asterisk_dir / "console.log",
                        self.settings.asterisk_root / "var/log/asterisk/messages.log"):
                if log.is_file():
                    shutil.copy(log, keep / f"asterisk-{log.name}")
        if any(line.split()[1].startswith(str(self.var)) for line in Path("/proc/mounts").read_text().splitlines()):
            raise RuntimeError(f"{self.var} still has a mount; not removing it")
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.var)], check=False)
        _CLAIMED.difference_update(self.ports)

    # ------------------------------------------------------------------ who is who
    def asterisk_pid(self) -> int | None:
        """From Asterisk's pidfile (no CLI round trip: the CPU meter asks twice a second)."""
        try:
            pid = int((self.settings.asterisk_dir / "asterisk.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if cpu_seconds(pid) is not None else None

    def worker_pids(self) -> list[int]:
        sup = self.services.get("transcribe")
        pid = sup.pid if sup else None
        return [c for c in children(pid) if "spawn_main" in cmdline(c)] if pid else []

    def pids(self) -> dict[str, list[int]]:
        """Our processes by role, for the CPU meter (the transcription supervisor with its workers)."""
        out: dict[str, list[int]] = {}
        for name, svc in self.services.items():
            pid = svc.pid
            out[name] = [pid] if pid else []
        if "transcribe" in out:
            out["transcribe"] += self.worker_pids()
        ast = self.asterisk_pid()
        out["asterisk"] = [ast] if ast else []
        return out

    # ------------------------------------------------------------------ readiness
    def lead(self) -> dict[str, str]:
        """A lead's bearer header (the demo lead, signed in once: sessions live in the database)."""
        if self._lead is None:
            r = httpx.post(f"{self.url}/api/auth/login", json=dict(zip(("username", "password"), LEAD, strict=True)),
                           timeout=5)
            r.raise_for_status()
            self._lead = {"Authorization": f"Bearer {r.json()['token']}"}
        return self._lead

    def web_ready(self) -> bool:
        """The console answers and its health page says every component is up."""
        try:
            r = httpx.get(f"{self.url}/api/health", headers=self.lead(), timeout=3)
        except (httpx.HTTPError, OSError):
            return False
        return r.status_code == 200 and bool(r.json().get("ok"))

    def ami_sessions(self) -> int:
        """How many AMI sessions of our user Asterisk has now (the bridge's, once logged in)."""
        try:
            out = process.cli(self.settings, "manager show connected", timeout=5)
        except Exception:
            return 0
        return sum(1 for line in out.splitlines() if line.split()[:1] == [self.settings.ami_user])

    def bridge_ready(self) -> bool:
        return self.ami_sessions() >= 1

    def agi_ready(self) -> bool:
        """A real FastAGI lookup is answered (as Asterisk asks it for every call)."""
        import asyncio

        from testkit.agi import AgiClient

        client = AgiClient("127.0.0.1", self.settings.agi_port, "lookup", callerid="13953019999",
                           uniqueid=f"{time.time():.6f}", extra_env={"agi_arg_1": "1"})
        try:
            asyncio.run(client.run(timeout=3))
        except (OSError, TimeoutError):
            return False
        return bool(client.variables)  # the lookup set the caller's variables

    def calls_check(self) -> dict[str, Any]:
        """``hotline calls check --json`` on this stack: the call log against Asterisk's own records."""
        out = subprocess.run([sys.executable, "-m", "launch.cli", "calls", "check", "--json"], cwd=ROOT,
                             env=self.env(""), capture_output=True, text=True, timeout=120)
        try:
            return dict(json.loads(out.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return {"error": (out.stderr or out.stdout)[-300:]}

    def workers_ready(self) -> bool:
        return len(self.worker_pids()) >= self.workers

    # ------------------------------------------------------------------ faults
    def kill(self, name: str) -> int:
        """``kill -9`` one service (``worker``: one transcription worker); returns the pid killed.
        The supervisor (the stack's, or the transcription supervisor for a worker) restarts it."""
        if name == "worker":
            pid = self.worker_pids()[0]
        else:
            svc = self.services[name]
            pid = svc.pid
            if pid is None:
                raise RuntimeError(f"{name} is not running")
        os.kill(pid, signal.SIGKILL)
        return pid

    def restart_asterisk(self) -> None:
        """Stop Asterisk as an operator would (``core stop now``: calls are hung up) and start it again."""
        process.stop(self.settings)
        process.start(self.settings)


def _scratch(base: Settings) -> Path:
    """Throwaway stacks live under the checkout's var/ (the chroot copy is half a gigabyte)."""
    folder = base.var_dir / "stacks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_until(probe: Callable[[], bool], timeout: float, every_s: float = 0.1) -> float | None:
    """Seconds until ``probe()`` is true, or None after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if probe():
            return time.monotonic() - start
        time.sleep(every_s)
    return None


def active_calls(settings: Settings) -> int:
    """Asterisk's count of calls in progress (``core show channels count``)."""
    out = process.cli(settings, "core show channels count", timeout=5)
    match = re.search(r"(\d+) active call", out)
    return int(match.group(1)) if match else 0
