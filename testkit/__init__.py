"""What tests and benchmarks share: never imported by the product.

Fixtures of real AMI traffic (:mod:`testkit.ami`), a throwaway PostgreSQL server
(:mod:`testkit.postgres`), Asterisk's side of FastAGI (:mod:`testkit.agi`) and two-leg call
recordings (:mod:`testkit.audio`), and for load and faults: the whole stack on a copy of the chroot
(:mod:`testkit.stack`), SIPp traffic with a ledger per call (:mod:`testkit.traffic`), what the
hotline kept of it (:mod:`testkit.tally`) and the fault suite (:mod:`testkit.soak`). ``tests/``
and ``bench/`` import these modules; the product packages (``hotline``, ``ticketing``, ``cti``…)
never do, so nothing here ships behaviour.
"""

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout: fixtures are found from here, never by absolute path


def free_port() -> int:
    """A TCP port on 127.0.0.1 free now (the throwaway servers' default)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
