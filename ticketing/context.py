"""What every part of the ticket store shares: the engine, the clock, the limits, the calendar.

The store is split by concern (:mod:`ticketing.store` puts the parts together); each part takes
one :class:`StoreContext`, so they all see the same clock (tests inject one) and the same cached
working-day calendar.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ticketing.calendar import WorkCalendar
from ticketing.deadlines import Limits
from ticketing.models import CalendarDay, utcnow
from ticketing.schemas import Actor

CALENDAR_TTL_S = 300


def role_of(actor: Actor | Any) -> str:
    return str(getattr(actor, "role", ""))


@dataclass
class StoreContext:
    """``clock`` returns an aware "now"."""

    engine: sa.Engine
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], datetime] = utcnow
    area_code: str = "0530"
    duplicate_window: timedelta = timedelta(days=30)
    duplicate_threshold: float = 42.0
    repeat_supervision: int = 1  # repeats of a live ticket before it is supervised
    files: Path | None = None  # where attachments are kept (settings: var/attachments)
    max_attachment_bytes: int = 10 * 2**20
    _calendar: WorkCalendar | None = field(default=None, init=False, repr=False)
    _calendar_at: float = field(default=0.0, init=False, repr=False)
    _cal_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def calendar(self) -> WorkCalendar:
        """The working-day calendar with the admins' overrides.

        Cached; reloaded when changed here or after ``CALENDAR_TTL_S`` (another web node may
        have changed it).
        """
        with self._cal_lock:
            stale = time.monotonic() - self._calendar_at > CALENDAR_TTL_S
            if self._calendar is None or stale:
                with Session(self.engine) as s:
                    days = {d.day: d.workday for d in s.exec(select(CalendarDay))}
                self._calendar = WorkCalendar(days)
                self._calendar_at = time.monotonic()
            return self._calendar

    def calendar_changed(self) -> None:
        with self._cal_lock:
            self._calendar = None
