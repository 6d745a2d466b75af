"""What tests and benchmarks share: never imported by the product.

Fixtures of real AMI traffic (:mod:`testkit.ami`), a throwaway PostgreSQL server
(:mod:`testkit.postgres`), Asterisk's side of FastAGI (:mod:`testkit.agi`) and two-leg call
recordings (:mod:`testkit.audio`), and for load and faults: the whole stack on a copy of the chroot
(:mod:`testkit.stack`), SIPp traffic with a ledger per call (:mod:`testkit.traffic`), what the
hotline kept of it (:mod:`testkit.tally`) and the fault suite (:mod:`testkit.soak`). ``tests/``
and ``bench/`` import these modules; the product packages (``hotline``, ``ticketing``, ``cti``…)
never do, so nothing here ships behaviour.
"""

import asyncio
import selectors
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



async def connect_burst(port: int, n: int, busy_s: float = 0.5) -> list[float]:
    """Seconds each of ``n`` connects to 127.0.0.1:``port`` took, all started at once while the
    caller's loop (the server's, in an async test) is blocked for ``busy_s`` and so accepts none: what
    a burst of calls meets at a busy server. A connect past the listen queue has its SYN dropped and
    the kernel sends it again after a second. A connect not made within 5 s is left out."""
    took: list[float] = []

    def connect_all() -> None:
        with selectors.DefaultSelector() as sel:
            started: dict[socket.socket, float] = {}
            for _ in range(n):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                sel.register(s, selectors.EVENT_WRITE)  # connected = writable
                started[s] = time.monotonic()
            deadline = time.monotonic() + 5
            while started and (left := deadline - time.monotonic()) > 0:
                for key, _ in sel.select(left):
                    s = key.fileobj
                    took.append(time.monotonic() - started.pop(s))  # type: ignore[arg-type]
                    sel.unregister(s)
                    s.close()  # type: ignore[union-attr]
            for s in started:
                s.close()

    t = threading.Thread(target=connect_all, daemon=True)
    t.start()
    time.sleep(busy_s)  # noqa: ASYNC251 (on purpose: the loop is blocked, so nothing is accepted meanwhile)
    await asyncio.to_thread(t.join, 10)
    return took
