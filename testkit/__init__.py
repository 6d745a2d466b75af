"""What tests and benchmarks share: never imported by the product.

Fixtures of real AMI traffic (:mod:`testkit.ami`), a throwaway PostgreSQL server
(:mod:`testkit.postgres`), Asterisk's side of FastAGI (:mod:`testkit.agi`) and two-leg call
recordings (:mod:`testkit.audio`), and for load and faults: the whole stack on a copy of the chroot
(:mod:`testkit.stack`), SIPp traffic with a ledger per call (:mod:`testkit.traffic`), what the
hotline kept of it (:mod:`testkit.tally`) and the fault suite (:mod:`testkit.soak`). ``tests/``
and ``bench/`` import these modules; the product packages (``hotline``, ``ticketing``, ``cti``…)
never do, so nothing here ships behaviour.
"""

import select
import socket
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: fixtures are found from here, never by absolute path


def free_port() -> int:
    """A TCP port on 127.0.0.1 free now (the throwaway servers' default)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_burst(port: int, n: int, busy_s: float = 0.5) -> list[float]:
    """Seconds each of ``n`` connects to 127.0.0.1:``port`` took, all started at once while the caller's
    thread (the server's loop, in an async test) sleeps ``busy_s`` and so accepts none: what a burst of
    calls meets at a busy server. A connect past the listen queue has its SYN dropped, and the kernel
    sends it again after a second."""
    took: list[float] = []

    def connect_all() -> None:
        socks = []
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            socks.append((s, time.monotonic()))
        for s, t0 in socks:  # connected = writable
            select.select([], [s], [], 3)
            took.append(time.monotonic() - t0)
            s.close()

    t = threading.Thread(target=connect_all)
    t.start()
    time.sleep(busy_s)
    t.join(10)
    return took
