"""Service hours ("08:00-20:00"; overnight "20:00-08:00"; "00:00-24:00" is 7×24)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

_MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class ServiceHours:
    start: time
    end: time  # time(0, 0) with ``until_midnight`` stands for 24:00
    until_midnight: bool = False

    @classmethod
    def parse(cls, text: str) -> ServiceHours:
        """
        >>> h = ServiceHours.parse("08:00-20:00"); h.open_at(time(7, 59)), h.open_at(time(8)), h.open_at(time(20))
        (False, True, False)
        >>> ServiceHours.parse("00:00-24:00").always
        True
        >>> n = ServiceHours.parse("20:00-08:00"); n.open_at(time(23)), n.open_at(time(7)), n.open_at(time(12))
        (True, True, False)
        >>> ServiceHours.parse("8-20")
        Traceback (most recent call last):
        ...
        ValueError: service hours must look like 08:00-20:00, not '8-20'
        """
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text or "")
        if not m:
            raise ValueError(f"service hours must look like 08:00-20:00, not {text!r}")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        if h2 == 24 and m2 == 0:
            return cls(time(h1, m1), time(0, 0), until_midnight=True)
        return cls(time(h1, m1), time(h2, m2))

    @property
    def always(self) -> bool:
        return self.until_midnight and self.start == _MIDNIGHT

    def open_at(self, now: time) -> bool:
        now = now.replace(tzinfo=None)
        if self.until_midnight:
            return now >= self.start
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end  # overnight window

    @property
    def end_clock(self) -> tuple[int, int]:
        return (24, 0) if self.until_midnight else (self.end.hour, self.end.minute)
