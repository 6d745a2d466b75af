"""The call log: every call the CTI bridge saw, persisted when it ends, and the callback list.

This is the one writer of the ``call_record`` table. Each finished call
(:class:`hotline.calls.FinishedCall`, from the bus) goes to :meth:`CallLog.record`; the AGI
survey and the after-hours callback request arrive separately (often before the call has ended)
and are merged in by the call's id, whichever comes first. Abandoned calls and callback
requests form the callback list (未接来电回拨) that operators and leads work through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.calls import SURVEY_LABELS, FinishedCall
from hotline.db import session_scope
from ticketing.callers import location_of, normalize_number
from ticketing.models import MEDIUM, CallRecord, Ticket, TicketEvent

F = TypeVar("F", bound=Callable[..., Any])


def _once_more(fn: F) -> F:
    """A write that makes a call's row if it is missing: when another writer made it between our
    read and our insert (the survey and the finished call arrive together; two reports of one call),
    the second try finds it and updates it, instead of losing the survey or sending the call back to
    the outbox."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except sa.exc.IntegrityError:
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def _at(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def as_dict(rec: CallRecord) -> dict[str, object]:
    """The ``/api/calls`` shape (DESIGN.md §3)."""
    return {
        "id": rec.uniqueid,
        "caller": rec.caller_number,
        "caller_name": rec.caller_name,
        "location": rec.location,
        "queue": rec.queue,
        "seats_rung": [s for s in rec.seats_rung.split(",") if s],
        "seat": rec.seat,
        "operator": rec.operator,
        "job_number": rec.job_number,
        "offered": _iso(rec.started_at),
        "answered": _iso(rec.answered_at),
        "ended": _iso(rec.ended_at),
        "wait_s": round(rec.wait_ms / 1000, 3) if rec.wait_ms is not None else None,
        "within_15s": rec.within_rule,
        "talk_s": round(rec.talk_s, 1),
        "hold_s": round(rec.hold_s, 1),
        "abandoned": rec.abandoned,
        "lost": rec.lost,
        "transferred_to": rec.transferred_to,
        "conference": rec.conference,
        "recordings": [r for r in rec.recordings.split(",") if r],
        "recording_id": rec.recording_id or None,
        "message": rec.recording_id.startswith("message-"),  # 留言: the citizen's voice message
        "ticket_id": rec.ticket_id,
        "survey": rec.survey,
        "survey_label": SURVEY_LABELS.get(rec.survey or 0, ""),
        "callback_requested": rec.callback_requested,
        "callback_reason": rec.callback_reason,
        "called_back_at": _iso(rec.called_back_at),
        "called_back_by": rec.called_back_by,
        "callback_note": rec.callback_note,
        "reconstructed": rec.reconstructed,
    }


class CallLog:
    def __init__(self, engine: sa.Engine, area_code: str = "0530") -> None:
        self.engine = engine
        self.area_code = area_code

    def _row(self, s: Session, uniqueid: str, caller: str = "") -> CallRecord:
        rec = s.exec(select(CallRecord).where(CallRecord.uniqueid == uniqueid)).first()
        return rec if rec is not None else self._new(s, uniqueid, caller)

    def _new(self, s: Session, uniqueid: str, caller: str) -> CallRecord:
        number = normalize_number(caller, self.area_code)
        rec = CallRecord(uniqueid=uniqueid, caller_number=number, location=location_of(number))
        s.add(rec)
        return rec

    def record(self, call: FinishedCall) -> int:
        """Store a finished call; idempotent on its id, keeping a survey or callback request already merged."""
        return self.record_many([call])[0]

    @_once_more
    def record_many(self, calls: Sequence[FinishedCall]) -> list[int]:
        """Store finished calls in one transaction, each as :meth:`record` would (the row ids, in order).
        A burst of hang-ups is one read of the rows it touches and one commit, not one of each per call;
        a call reported twice in the batch (a resync) is still one row, holding the better report."""
        with session_scope(self.engine) as s:
            ids = sorted({c.call_id for c in calls})
            rows = {r.uniqueid: r for r in s.exec(select(CallRecord).where(CallRecord.uniqueid.in_(ids)))}  # type: ignore[attr-defined]
            out = []
            for call in calls:
                rec = rows.get(call.call_id)
                if rec is None:
                    rec = rows[call.call_id] = self._new(s, call.call_id, call.caller_num)
                self._apply(rec, call)
                out.append(rec)
            s.flush()
            return [int(r.id or 0) for r in out]

    def _apply(self, rec: CallRecord, call: FinishedCall) -> None:
        if rec.ended_at is not None and call.yields_to(finished(rec)):
            return  # the call log already holds the better report of this call
        rec.reconstructed = call.reconstructed
        rec.caller_number = normalize_number(call.caller_num, self.area_code) or rec.caller_number
        rec.location = call.location or rec.location or location_of(rec.caller_number)
        rec.caller_name = call.caller_name[:64] or rec.caller_name
        rec.queue = call.queue
        rec.seats_rung = ",".join(call.seats_rung)[:200]
        same_seat = rec.seat == call.seat  # a rebuilt call keeps who the bridge saw answer it
        rec.seat = call.seat
        rec.operator = call.operator[:64] or (rec.operator if same_seat else "")
        rec.job_number = call.job_number[:64] or (rec.job_number if same_seat else "")
        rec.started_at = _at(call.offered_at)
        rec.answered_at = _at(call.answered_at)
        rec.ended_at = _at(call.ended_at)
        rec.wait_ms = call.wait_ms
        rec.within_rule = call.within_rule
        rec.talk_s = call.talk_s
        rec.hold_s = call.hold_s
        rec.abandoned = call.abandoned
        rec.lost = call.lost
        rec.transferred_to = call.transferred_to[:64]
        rec.conference = call.conference[:64]
        rec.recordings = ",".join(call.recordings)[:4000]
        base = call.recording_base or (call.recordings[0].removesuffix(".wav") if call.recordings else "")
        rec.recording_id = base[:MEDIUM] or rec.recording_id
        if call.survey is not None:
            rec.survey = call.survey
        rec.callback_requested = rec.callback_requested or call.callback_requested

    @_once_more
    def record_survey(self, uniqueid: str, score: int | None, caller: str = "", by: str = "ivr") -> None:
        """The post-call survey: on the call, and in the history of the ticket the call produced."""
        if score not in SURVEY_LABELS:
            return  # no answer, or a key that means nothing: nothing to store
        with session_scope(self.engine) as s:
            rec = self._row(s, uniqueid, caller)
            rec.survey = score
            if rec.ticket_id is not None and s.get(Ticket, rec.ticket_id) is not None:
                ticket = s.get(Ticket, rec.ticket_id)
                assert ticket is not None
                s.add(TicketEvent(ticket_id=rec.ticket_id, at=datetime.now(UTC), actor=by, actor_role="citizen",
                                  action="survey", from_status=ticket.status, to_status=ticket.status,
                                  note=f"来电满意度评价：{SURVEY_LABELS[score]}"))

    @_once_more
    def request_callback(self, uniqueid: str, caller: str, reason: str = "", message: str = "") -> None:
        """The citizen asked to be called back, or left a voice message (after hours, all seats busy):
        onto the callback list. ``message`` is the message's recording base (the call's only recording)."""
        with session_scope(self.engine) as s:
            rec = self._row(s, uniqueid, caller)
            rec.callback_requested = True
            rec.callback_reason = reason[:64]
            if message:
                rec.recording_id = message[:MEDIUM]
            if rec.started_at is None:
                rec.started_at = datetime.now(UTC)

    def list(self, since: datetime | None = None, until: datetime | None = None, number: str = "",
             queue: str = "", limit: int = 200, offset: int = 0) -> list[dict[str, object]]:
        """Newest first; ``number`` matches the normalised caller number exactly."""
        q = select(CallRecord).where(CallRecord.started_at.is_not(None))  # type: ignore[union-attr]
        if since:
            q = q.where(CallRecord.started_at >= since)  # type: ignore[operator]
        if until:
            q = q.where(CallRecord.started_at < until)  # type: ignore[operator]
        if number:
            q = q.where(CallRecord.caller_number == normalize_number(number, self.area_code))
        if queue:
            q = q.where(CallRecord.queue == queue)
        q = q.order_by(CallRecord.started_at.desc()).offset(offset).limit(min(limit, 1000))  # type: ignore[union-attr]
        with Session(self.engine) as s:
            return [as_dict(r) for r in s.exec(q)]

    def between(self, since: datetime, until: datetime | None = None) -> list[dict[str, object]]:
        """Every call offered in ``[since, until)`` (``/api/calls`` rows), read a page at a time."""
        out: list[dict[str, object]] = []
        while True:
            page = self.list(since, until, "", "", 1000, len(out))
            out.extend(page)
            if len(page) < 1000:
                return out

    def callbacks(self, include_done: bool = False, days: int = 7,
                  now: datetime | None = None) -> list[dict[str, object]]:
        """未接来电回拨: abandoned calls and callback requests of the last ``days``, oldest first.

        A number that got through later is marked ``answered_later`` (it may need no callback).
        """
        now = now or datetime.now(UTC)
        start = now - timedelta(days=days)
        wanted = sa.or_(CallRecord.abandoned.is_(True), CallRecord.callback_requested.is_(True))  # type: ignore[attr-defined]
        q = select(CallRecord).where(wanted, CallRecord.started_at >= start)  # type: ignore[operator]
        if not include_done:
            q = q.where(CallRecord.called_back_at.is_(None))  # type: ignore[union-attr]
        q = q.order_by(CallRecord.started_at)  # type: ignore[arg-type]
        with Session(self.engine) as s:
            rows = list(s.exec(q))
            numbers = {r.caller_number for r in rows if r.caller_number}
            answered: dict[str, datetime] = {}
            if numbers:
                later = select(CallRecord.caller_number, sa.func.max(CallRecord.answered_at)).where(
                    CallRecord.caller_number.in_(numbers), CallRecord.answered_at.is_not(None)  # type: ignore[attr-defined,union-attr]
                ).group_by(CallRecord.caller_number)
                answered = {n: a for n, a in s.exec(later) if a is not None}
        out = []
        for r in rows:
            item = as_dict(r)
            last = answered.get(r.caller_number)
            item["answered_later"] = bool(last and r.started_at and _aware(last) > _aware(r.started_at))
            out.append(item)
        return out

    def mark_called_back(self, uniqueid: str, by: str, note: str = "", at: datetime | None = None) -> dict[str, object]:
        with session_scope(self.engine) as s:
            rec = s.exec(select(CallRecord).where(CallRecord.uniqueid == uniqueid)).first()
            if rec is None:
                raise LookupError("通话记录不存在")
            if rec.called_back_at is None:  # the first who called back stays (two clicks, a retried request)
                rec.called_back_at = at or datetime.now(UTC)
                rec.called_back_by = by[:64]
            rec.callback_note = note[:200] or rec.callback_note
            s.flush()
            return as_dict(rec)

    @_once_more
    def link_ticket(self, uniqueid: str, ticket_id: int) -> None:
        with session_scope(self.engine) as s:
            if s.get(Ticket, ticket_id) is None:
                raise LookupError("工单不存在")
            self._row(s, uniqueid).ticket_id = ticket_id

    def recent(self, since: datetime) -> list[FinishedCall]:
        """Finished calls since ``since``, for the bridge to rebuild its rolling figures after a restart."""
        q = select(CallRecord).where(CallRecord.ended_at >= since)  # type: ignore[operator]
        with Session(self.engine) as s:
            return [finished(r) for r in s.exec(q.order_by(CallRecord.started_at))]  # type: ignore[arg-type]

    def get(self, uniqueid: str) -> FinishedCall | None:
        """One logged call as the bridge reported it (None if the call log has not heard of it)."""
        with Session(self.engine) as s:
            rec = s.exec(select(CallRecord).where(CallRecord.uniqueid == uniqueid)).first()
            return finished(rec) if rec is not None and rec.ended_at is not None else None

    def ticket_of(self, uniqueid: str) -> int | None:
        """The ticket a call produced (None if none yet)."""
        if not uniqueid:
            return None
        with Session(self.engine) as s:
            return s.exec(select(CallRecord.ticket_id).where(CallRecord.uniqueid == uniqueid)).first()

    def tickets_of(self, uniqueids: Sequence[str]) -> dict[str, int]:
        """The tickets these calls produced, by call id (a call with none yet is left out)."""
        wanted = sorted({u for u in uniqueids if u})
        if not wanted:
            return {}
        q = select(CallRecord.uniqueid, CallRecord.ticket_id).where(
            CallRecord.uniqueid.in_(wanted), CallRecord.ticket_id.is_not(None))  # type: ignore[attr-defined,union-attr]
        with Session(self.engine) as s:
            return {u: t for u, t in s.exec(q) if t is not None}

    def for_ticket(self, ticket_id: int) -> list[dict[str, object]]:
        """The calls that produced or followed up a ticket, oldest first."""
        q = select(CallRecord).where(CallRecord.ticket_id == ticket_id).order_by(CallRecord.started_at)  # type: ignore[arg-type]
        with Session(self.engine) as s:
            return [as_dict(r) for r in s.exec(q)]


def finished(r: CallRecord) -> FinishedCall:
    """A call-log row back as the bridge's finished call."""
    return FinishedCall(
        call_id=r.uniqueid, caller_num=r.caller_number, caller_name=r.caller_name, queue=r.queue,
        seats_rung=tuple(x for x in r.seats_rung.split(",") if x), seat=r.seat, operator=r.operator,
        job_number=r.job_number,
        offered_at=_aware(r.started_at).timestamp() if r.started_at else 0.0,
        answered_at=_aware(r.answered_at).timestamp() if r.answered_at else None,
        ended_at=_aware(r.ended_at).timestamp() if r.ended_at else 0.0, wait_ms=r.wait_ms,
        within_rule=r.within_rule, talk_s=r.talk_s, hold_s=r.hold_s, abandoned=r.abandoned, lost=r.lost,
        transferred_to=r.transferred_to, conference=r.conference,
        recordings=tuple(x for x in r.recordings.split(",") if x), recording_base=r.recording_id,
        location=r.location, survey=r.survey, callback_requested=r.callback_requested,
        reconstructed=r.reconstructed,
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
