"""Start and stop SIPp processes, tracked by PID so none is ever left behind.

An orphaned SIPp keeps its port and silently answers the next run's calls, and a killed one
sends no BYE: every process started here is recorded in ``<run_dir>/pids`` and stopped by PID
(only processes whose command line is SIPp's), at the end of a run or at the start of the next.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hotline.asterisk.render import PSTN_PORT  # the one port the callback trunk dials

SCENARIOS = resources.files("hotline.simulate") / "scenarios"


def scenario_text(name: str) -> str:
    return (SCENARIOS / name).read_text()


# the ports the runners of this process were given: a port free now is not free once another runner's
# SIPp binds it, and runners work side by side in threads (a centre of two servers registers both
# servers' phones at once: both took 5600, and the second phone could not bind)
_GIVEN: set[int] = set()
_GIVING = threading.Lock()


def free_port(start: int, span: int = 1) -> int:
    """The first port ≥ start such that ``span`` consecutive UDP ports can be bound now and are held
    by no other runner of this process (until it gives them back)."""
    with _GIVING:
        port = start
        while port < 65000:
            block = range(port, port + span)
            if not _GIVEN.intersection(block) and all(_udp_free(p) for p in block):
                _GIVEN.update(block)
                return port
            port += span
    raise RuntimeError(f"no free UDP ports from {start}")


def give_back(ports: set[int]) -> None:
    with _GIVING:
        _GIVEN.difference_update(ports)


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _rate_args(per_second: float) -> list[str]:
    """SIPp takes whole calls per period: 0.5/s is one call every 2000 ms."""
    if per_second >= 1:
        return ["-r", str(round(per_second)), "-rp", "1000"]
    return ["-r", "1", "-rp", str(round(1000 / per_second))]


@dataclass
class SippProcess:
    name: str
    cmd: list[str]
    popen: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)
    sip_port: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def errors(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class SippRunner:
    """Renders scenarios into ``run_dir`` and runs SIPp against Asterisk at ``target``."""

    def __init__(self, run_dir: Path, target: str = "127.0.0.1:5060", local_ip: str = "127.0.0.1") -> None:
        self.run_dir = run_dir
        self.target = target
        self.local_ip = local_ip
        self.procs: list[SippProcess] = []
        self.registrations: dict[str, tuple[str, int]] = {}  # user → (password, contact port)
        self._ports: set[int] = set()  # given to this runner's phones, given back when they stop
        self._seq = 0
        run_dir.mkdir(parents=True, exist_ok=True)
        self.reap_orphans()
        atexit.register(self.stop_all)

    # -------------------------------------------------------------- process bookkeeping
    @property
    def _pidfile(self) -> Path:
        return self.run_dir / "pids"

    def reap_orphans(self) -> int:
        """Stop SIPp processes an earlier run recorded and left behind (crash, kill -9)."""
        killed = 0
        if self._pidfile.exists():
            for line in self._pidfile.read_text().split():
                pid = int(line)
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
                except OSError:
                    continue
                if os.path.basename(cmdline) == b"sipp":
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            self._pidfile.unlink()
        return killed

    def _record(self) -> None:
        alive = [str(p.pid) for p in self.procs if p.running()]
        self._pidfile.write_text("\n".join(alive) + "\n")

    def start(self, name: str, scenario: str, args: list[str]) -> SippProcess:
        self._seq += 1
        tag = f"{name}-{self._seq}"
        path = self.run_dir / f"{tag}.xml"
        path.write_text(scenario)
        log = self.run_dir / f"{tag}.log"
        cmd = ["sipp", self.target, "-sf", str(path), "-i", self.local_ip, "-mi", self.local_ip,
               "-nostdin", "-trace_err", "-error_file", str(log),
               *[str(a) for a in args]]
        with open(log.with_suffix(".err"), "wb") as err:  # the child keeps its own copy of the fd
            popen = subprocess.Popen(cmd, cwd=self.run_dir, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=err)
        proc = SippProcess(tag, cmd, popen, log)
        self.procs.append(proc)
        self._record()
        return proc

    def stop_all(self) -> None:
        """Stop every phone, then unregister the seats so no contact points at a dead port."""
        for proc in self.procs:
            proc.stop()
        self.procs = [p for p in self.procs if p.running()]
        self._record()
        for user, (password, port) in list(self.registrations.items()):
            with contextlib.suppress(RuntimeError):  # Asterisk gone: nothing left to unregister from
                self.register(user, password, port, expires=0)
        self.registrations.clear()
        if not self.procs:  # a phone that would not stop keeps its ports
            give_back(self._ports)
            self._ports.clear()

    def port(self, start: int, span: int = 1) -> int:
        port = free_port(start, span)
        self._ports.update(range(port, port + span))
        return port

    # -------------------------------------------------------------- phones
    def register(self, user: str, password: str, port: int, expires: int = 3600, timeout: float = 10) -> None:
        """Register (or with expires=0 unregister) ``user`` with its Contact on ``port``."""
        scenario = scenario_text("register.xml").replace("@EXPIRES@", str(expires))
        proc = self.start(f"reg-{user}", scenario, ["-s", user, "-au", user, "-ap", password, "-p", port,
                                                      "-m", 1, "-timeout", f"{int(timeout)}s"])
        rc = proc.wait(timeout + 5)
        self.procs.remove(proc)
        self._record()
        if rc != 0:
            raise RuntimeError(f"SIPp REGISTER {user} failed (exit {rc}): {proc.errors()[-400:]}")
        if expires:
            self.registrations[user] = (password, port)
        else:
            self.registrations.pop(user, None)

    def seat(self, user: str, password: str, media: Path, ring_ms: int = 2000, talk_ms: int = 20_000,
             port: int | None = None, hold: tuple[int, int] | None = None) -> SippProcess:
        """A seat bot: registers ``user`` then answers every call after ``ring_ms``.

        ``hold=(at_ms, for_ms)``: ``at_ms`` into each call the seat holds it for ``for_ms``, then talks
        ``talk_ms`` more."""
        port = port or self.port(5100)
        self.register(user, password, port)
        holding = ""
        if hold is not None:
            holding = (scenario_text("hold.xml").replace("@HOLD_AT_MS@", str(hold[0]))
                       .replace("@HOLD_MS@", str(hold[1])))
        scenario = (scenario_text("seat.xml").replace("@HOLD@", holding).replace("@RING_MS@", str(ring_ms))
                    .replace("@TALK_MS@", str(talk_ms)).replace("@MEDIA@", str(media)))
        mport = self.port(16000, 4)
        proc = self.start(f"seat-{user}", scenario, ["-s", user, "-p", port, "-mp", mport])
        proc.sip_port = port
        return proc

    def outside(self, number: str, media: Path, ring_ms: int = 1500, talk_ms: int = 120_000) -> SippProcess:
        """A citizen's phone on the outside line (the PSTN the callback trunk dials, ``pstn-out``):
        answers calls to ``number`` after ``ring_ms``, plays ``media`` and hangs up after ``talk_ms``
        unless the call ends first; it runs until stopped. (Not ``-m 1``: a BYE Asterisk still
        retransmits for an earlier test's call to this port counted as that one call, and the phone
        was gone before the callback rang.)"""
        scenario = (scenario_text("seat.xml").replace("@HOLD@", "").replace("@RING_MS@", str(ring_ms))
                    .replace("@TALK_MS@", str(talk_ms)).replace("@MEDIA@", str(media)))
        return self.start(f"outside-{number}", scenario,
                          ["-s", number, "-p", PSTN_PORT, "-mp", self.port(18000, 4)])

    def callers(self, numbers: list[str], service: str, media: Path, *, calls: int | None = None,
                rate: float = 1.0, concurrency: int = 10, hangup_ms: int = 30_000,
                dtmf: str | None = None, dtmf_mode: str = "rfc4733", dtmf_at_ms: int = 0,
                bye_wait_ms: int = 30_000) -> SippProcess:
        """``calls`` citizens (numbers taken in turn) at ``rate`` per second, at most ``concurrency`` at once.

        Without ``dtmf`` each citizen hangs up after ``hangup_ms`` unless the far end does first;
        with it, the citizen presses ``dtmf`` ``dtmf_at_ms`` after the answer and waits (``bye_wait_ms`` at
        most) for the BYE.
        """
        calls = calls or len(numbers)
        inject = self.run_dir / f"numbers-{self._seq + 1}.csv"
        inject.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
        if dtmf:
            fragment = "dtmf_info.xml" if dtmf_mode == "info" else "dtmf_rfc4733.xml"
            tail = (scenario_text("tail_dtmf.xml").replace("@DTMF@", scenario_text(fragment))
                    .replace("@DTMF_AT_MS@", str(dtmf_at_ms)).replace("@DIGIT@", dtmf)
                    .replace("@BYE_WAIT_MS@", str(bye_wait_ms)))
        else:
            tail = scenario_text("tail_hangup.xml").replace("@HANGUP_MS@", str(hangup_ms))
        scenario = scenario_text("caller.xml").replace("@TAIL@", tail).replace("@MEDIA@", str(media))
        port = self.port(5200)
        mport = self.port(17000, 4)
        return self.start("caller", scenario, [
            "-s", service, "-inf", inject, "-p", port, "-mp", mport, "-m", calls, "-l", concurrency,
            *_rate_args(rate), "-timeout", f"{int((hangup_ms + dtmf_at_ms + bye_wait_ms) / 1000 + 90)}s",
        ])
