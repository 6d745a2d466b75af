"""Races on purpose: several writers released at the same moment, for the tests of what must hold
when two reports, clicks or processes arrive together."""

from __future__ import annotations

import threading
from collections.abc import Callable


def at_once(*calls: Callable[[], object], timeout_s: float = 10.0) -> None:
    """Run each call in a thread of its own, all released together by one barrier, and wait for them."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> None:
        start.wait()
        call()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s)
