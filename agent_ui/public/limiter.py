"""Rate limits of the pages citizens use without an account: a sliding window per key, in memory,
one per process (a node restart forgets them, which costs an attacker nothing worth having).

Pure: the clock is injected (monotonic seconds), nothing is read or written outside the object.
A status query is counted per client and per ticket number, so neither one address trying codes
nor many addresses trying one ticket get far: 10 tries an hour on a number leave a six-digit
code years away.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class SlidingWindow:
    """At most ``limit`` hits per key in any ``window_s`` seconds.

    >>> now = [0.0]
    >>> w = SlidingWindow(2, 60, clock=lambda: now[0])
    >>> w.hit("a"), w.hit("a"), w.hit("a"), w.hit("b")
    (0, 0, 60, 0)
    >>> now[0] = 59.5; w.hit("a")
    1
    >>> now[0] = 60.0; w.hit("a")
    0
    """

    def __init__(self, limit: int, window_s: float, clock: Clock = time.monotonic, max_keys: int = 20_000) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit and window must be positive")
        self.limit, self.window_s, self.clock, self.max_keys = limit, window_s, clock, max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # routes run on the loop, tests and tools in threads

    def hit(self, key: str) -> int:
        """Count one hit for ``key``: 0 if allowed, else the whole seconds to wait (the refused hit
        is not counted: trying again early does not push the wait further out)."""
        now = self.clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window_s - now))
            hits.append(now)
            self._hits.move_to_end(key)
            self._forget(now)
            return 0

    def __len__(self) -> int:
        """How many keys are remembered."""
        return len(self._hits)

    def _forget(self, now: float) -> None:
        """Keep memory bounded: keys with nothing left in the window go first, then the stalest."""
        if len(self._hits) <= self.max_keys:
            return
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window_s]:
            del self._hits[key]
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)


def wait_words(seconds: int) -> str:
    """How long to wait, as a citizen reads it.

    >>> wait_words(58), wait_words(119), wait_words(600)
    ('58 秒', '119 秒', '10 分钟')
    """
    return f"{seconds} 秒" if seconds < 120 else f"{math.ceil(seconds / 60)} 分钟"


@dataclass
class PublicLimits:
    """The public pages' limits; ``app.state.public_limits`` holds one (made on first use; tests
    put one with their own clock there)."""

    per_client: SlidingWindow  # status queries and ratings from one address
    per_number: SlidingWindow  # status queries and ratings of one ticket number, from anywhere
    submissions: SlidingWindow  # web-form reports from one address

    @classmethod
    def default(cls, clock: Clock = time.monotonic) -> PublicLimits:
        return cls(per_client=SlidingWindow(10, 60, clock), per_number=SlidingWindow(10, 3600, clock),
                   submissions=SlidingWindow(5, 600, clock))
