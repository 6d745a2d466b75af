"""The admins' holiday schedule (节假日与调休): what the working-day calendar takes over from
``chinesecalendar`` for a year, and where each year's days come from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from hotline.db import session_scope
from ticketing.context import StoreContext, role_of
from ticketing.models import CalendarDay
from ticketing.schemas import Actor, CalendarDayIn, Forbidden, InvalidInput, parse


class Holidays:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def set_days(self, days: Iterable[Mapping[str, Any]], actor: Actor) -> int:
        """Enter a year's schedule: ``[{"day": "2027-01-01", "workday": false, "note": "元旦"}, …]``."""
        if role_of(actor) != "admin":
            raise Forbidden("只有管理员可以设置节假日")
        rows = [parse(CalendarDayIn, dict(d)) for d in days]
        try:
            parsed = [(date.fromisoformat(r.day), r) for r in rows]
        except ValueError:
            raise InvalidInput(["日期无效"]) from None
        with session_scope(self.ctx.engine) as s:
            for day, r in parsed:
                s.merge(CalendarDay(day=day, workday=r.workday, note=r.note))
        self.ctx.calendar_changed()
        return len(parsed)

    def status(self, years: Iterable[int]) -> list[dict]:
        cal = self.ctx.calendar()
        return [{"year": y, "source": cal.source(y), "warning": cal.warning(y)} for y in years]
