"""The lead's tables, read and written: alert acknowledgements, seat spells, handovers, the roster
and the hand-entered assessment items.

Synchronous and blocking: the runtime calls it through ``asyncio.to_thread`` and the routes
through ``run_in_threadpool``, so the loop that CTI and AGI share never waits on the database.
Times come back as ISO strings with their UTC offset wherever the API hands them to a browser.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from agent_ui.lead.models import AlertAck, AssessmentEntry, Handover, RosterEntry, SeatSpell

ACK_LOG_MAX = 1000
HANDOVERS_MAX = 200


class Conflict(Exception):
    """The request contradicts what is stored (a route answers 409 with the message)."""


class NotFound(LookupError):
    """No such row (a route answers 404 with the message)."""


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _spell(seat: str, operator: str, state: str, reason: str, started_at: datetime, ended_at: datetime) -> SeatSpell:
    return SeatSpell(seat=seat, operator=operator, state=state, reason=reason[:64], started_at=started_at,
                     ended_at=ended_at, seconds=round((ended_at - started_at).total_seconds(), 3))


class LeadStore:
    """The lead's tables on one engine; ``clock`` stamps what the lead signs or enters."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], datetime] = _utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def _add(self, row: Any) -> int:
        with Session(self.engine) as s:
            s.add(row)
            s.commit()
            return row.id

    # ---------------------------------------------------------------------- acknowledged alerts

    def log_ack(self, *, kind: str, key: str, title: str, detail: str, queue: str, seat: str,
                raised_at: datetime, acked_by: str, acked_at: datetime) -> int:
        """An alert's first acknowledgement (the alert engine refuses to log a second one)."""
        return self._add(AlertAck(kind=kind, alert_key=key, title=title, detail=detail[:255], queue=queue,
                                  seat=seat, raised_at=raised_at, acked_by=acked_by, acked_at=acked_at))

    def ack_log(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest acknowledgements first."""
        with Session(self.engine) as s:
            rows = s.exec(select(AlertAck).order_by(col(AlertAck.id).desc()).limit(min(limit, ACK_LOG_MAX)))
            return [{"kind": a.kind, "title": a.title, "detail": a.detail, "queue": a.queue, "seat": a.seat,
                     "raised_at": _iso(a.raised_at), "acked_by": a.acked_by, "acked_at": _iso(a.acked_at)}
                    for a in rows]

    # ------------------------------------------------------------------------------ seat spells

    def add_spells(self, spells: Iterable[tuple[str, str, str, str, datetime, datetime]]) -> int:
        """Many spells (seat, operator, state, reason, start, end) in one transaction: a burst of calls
        changes every seat's state several times a call, and a commit each queued the centre's other
        writers (the call filing, the lookups' read log) behind SQLite's one write lock."""
        rows = [_spell(*sp).model_dump(exclude={"id"}) for sp in spells]
        if rows:
            with Session(self.engine) as s:
                s.execute(sa.insert(SeatSpell), rows)
                s.commit()
        return len(rows)

    def spells(self, since: datetime, until: datetime,
               states: Iterable[str] = ("busy", "wrap_up")) -> list[dict[str, Any]]:
        """The spells in ``states`` overlapping ``[since, until)``, whole (the report clips them)."""
        with Session(self.engine) as s:
            rows = s.exec(select(SeatSpell).where(SeatSpell.ended_at > since, SeatSpell.started_at < until,
                                                  col(SeatSpell.state).in_(tuple(states))))
            return [{"seat": sp.seat, "operator": sp.operator, "state": sp.state, "started_at": sp.started_at,
                     "ended_at": sp.ended_at} for sp in rows]

    # -------------------------------------------------------------------------------- handovers

    def handovers(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest handovers first, every column."""
        with Session(self.engine) as s:
            rows = s.exec(select(Handover).order_by(col(Handover.id).desc()).limit(min(limit, HANDOVERS_MAX)))
            return [h.model_dump() | {"created_at": _iso(h.created_at), "to_signed_at": _iso(h.to_signed_at)}
                    for h in rows]

    def create_handover(self, *, shift: str, from_lead: str, notes: str, tickets: Iterable[int]) -> int:
        """The outgoing lead's signature: the handover waits for the incoming lead's."""
        return self._add(Handover(shift=shift, from_lead=from_lead, notes=notes,
                                  tickets=",".join(map(str, tickets)), created_at=self.clock()))

    def sign_handover(self, handover_id: int, to_lead: str) -> None:
        """The incoming lead's countersignature: another lead than the outgoing one, and only once."""
        with Session(self.engine) as s:
            row = s.get(Handover, handover_id)
            if row is None:
                raise NotFound("交接记录不存在")
            if row.from_lead == to_lead:
                raise Conflict("交班与接班须由两位班长分别签字")
            # conditional, so two leads countersigning at once cannot both succeed
            signed = s.execute(sa.update(Handover).where(col(Handover.id) == handover_id,
                                                         col(Handover.to_signed_at).is_(None))
                               .values(to_lead=to_lead, to_signed_at=self.clock()))
            if signed.rowcount != 1:
                raise Conflict("该交接已由接班班长签字")
            s.commit()

    # ----------------------------------------------------------------------------------- roster

    def roster(self, day: date) -> list[dict[str, Any]]:
        """One day's roster, by shift, then duty, then name."""
        with Session(self.engine) as s:
            rows = s.exec(select(RosterEntry).where(RosterEntry.day == day)
                          .order_by(col(RosterEntry.shift), col(RosterEntry.duty), col(RosterEntry.username)))
            return [r.model_dump() for r in rows]

    def add_roster(self, *, day: date, shift: str, username: str, duty: str, seat: str, created_by: str) -> int:
        try:
            return self._add(RosterEntry(day=day, shift=shift, username=username, duty=duty, seat=seat,
                                         created_by=created_by))
        except sa.exc.IntegrityError:
            raise Conflict(f"{username} 已排在该班次") from None

    def remove_roster(self, roster_id: int) -> None:
        """Idempotent: removing an entry that is not there is not an error."""
        with Session(self.engine) as s:
            s.execute(sa.delete(RosterEntry).where(col(RosterEntry.id) == roster_id))
            s.commit()

    # ----------------------------------------------------------------------- assessment entries

    def add_assessment(self, *, department: str, day: date, item: str, count: int, note: str,
                       entered_by: str) -> int:
        return self._add(AssessmentEntry(department=department, day=day, item=item, count=count, note=note,
                                         entered_by=entered_by, entered_at=self.clock()))

    def entered(self, first: date, end: date) -> dict[str, Counter[str]]:
        """The hand-entered items of the days ``[first, end)``, summed per department and item."""
        out: dict[str, Counter[str]] = defaultdict(Counter)
        with Session(self.engine) as s:
            rows = s.exec(select(AssessmentEntry.department, AssessmentEntry.item,
                                 sa.func.sum(AssessmentEntry.count))
                          .where(AssessmentEntry.day >= first, AssessmentEntry.day < end)
                          .group_by(col(AssessmentEntry.department), col(AssessmentEntry.item)))
            for department, item, total in rows:
                out[department][item] += int(total)
        return out


__all__ = ["Conflict", "LeadStore", "NotFound"]
