"""Callbacks dialled once: the dial is claimed in the database before the switch rings anyone.

A callback *request* is what the operator calls back about: a missed call of the callback list
(``call:<uniqueid>``) or a ticket (``ticket:<id>``: its 回访, or a callback from the caller's
history). Each dial of a request is an *attempt* (1, 2, …), a row of ``callback_dial`` unique on
(request, attempt)::

    claim ──▶ dialing ──Originate accepted──▶ dialled
                 │  └──Asterisk refused (nothing rang)──▶ failed ── the same attempt may be claimed again
                 └──no answer from the switch, or the process died (lease over)──▶ unknown

The claim is one ``INSERT … ON CONFLICT DO NOTHING`` (or, for a failed attempt, one
``UPDATE … WHERE state = 'failed'``), checked by what it returns: of two clicks, two operators, two
web processes, one wins and the others get the attempt that stands (409). Only a deliberate
再拨一次 — a request naming the attempt it has seen (``after``) — claims the next attempt, and two
of those race for it the same way. A restart re-dials nothing by itself: an attempt whose
process died mid-dial is ``unknown`` (the Originate may have left), shown as such, and dialled
again only by a person who decides to.

The call's id (its ``ChannelId``) is chosen and stored with the claim, before the Originate: an
attempt names the call it made (its recording, its call-log row) even when its process died
before it heard Asterisk's answer; no two dials share one (a clash is claimed again with the next).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from cti.actions import ActionFailed, ActionResult, CtiActions
from cti.link import AmiNotSent
from hotline.db import UTCDateTime
from ticketing.calendar import TZ

# far beyond the Originate's answer (Async: Asterisk answers once it has queued the call)
LEASE = timedelta(minutes=2)
ID_TRIES = 20
STATE_LABELS = {"dialing": "正在回拨", "dialled": "已回拨", "failed": "回拨失败（未拨出）", "unknown": "回拨结果未知"}


class CallbackDial(SQLModel, table=True):
    __tablename__ = "callback_dial"
    __table_args__ = (sa.UniqueConstraint("request", "attempt", name="uq_callback_dial_attempt"),  # ui0013
                      sa.UniqueConstraint("channel_id", name="uq_callback_dial_channel"))

    id: int | None = Field(default=None, primary_key=True)
    request: str = Field(max_length=80)  # call:<uniqueid> / ticket:<id>
    attempt: int  # 1 for the first dial of the request
    state: str = Field(default="dialing", max_length=16)  # dialing / dialled / failed / unknown
    number: str = Field(max_length=32)
    seat: str = Field(max_length=16)
    requested_by: str = Field(max_length=64)
    token: str = Field(max_length=32)  # the claim's own: only its holder records the outcome
    # the originated call's id, chosen before it rings: its recording's name, so never two alike
    channel_id: str = Field(max_length=64)
    error: str = Field(default="", max_length=500)  # why it failed or is unknown, in Chinese
    claimed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]
    dialled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # type: ignore[call-overload]


TABLE = CallbackDial.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Dial:
    """An attempt claimed by this caller: dial ``channel_id`` now, then :func:`finish` it."""

    id: int
    request: str
    attempt: int
    token: str
    channel_id: str


class AlreadyDialled(Exception):
    """The attempt is another's (dialling, dialled, or its outcome unknown); ``latest`` is the
    request's newest attempt as :func:`view` shows it (None: the request has none)."""

    def __init__(self, message: str, latest: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.latest = latest


def request_of(call_id: str, ticket_id: int | None) -> str:
    """What a callback is about: the missed call it answers first, else the ticket.

    >>> request_of("1795400000.2", 7), request_of("", 7), request_of("", None)
    ('call:1795400000.2', 'ticket:7', '')
    """
    if call_id:
        return f"call:{call_id}"
    return f"ticket:{ticket_id}" if ticket_id is not None else ""


def claim(engine: sa.Engine, request: str, after: int, *, number: str, seat: str, by: str,
          new_id: Callable[[], str], now: datetime | None = None) -> Dial:
    """Claim attempt ``after + 1`` of ``request`` for this caller, with a call id from ``new_id``
    no other dial has, or raise :class:`AlreadyDialled`."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        if after > 0 and conn.execute(sa.select(TABLE.c.id).where(
                TABLE.c.request == request, TABLE.c.attempt == after)).first() is None:
            raise AlreadyDialled("回拨记录已变化，请刷新后再试", latest(engine, request, now))
    for _ in range(ID_TRIES):
        try:
            return _claim(engine, request, after + 1, number=number, seat=seat, by=by, channel_id=new_id(), now=now)
        except sa.exc.IntegrityError:
            # the id is another dial's: two processes (or a restart) counting from the same second
            continue
    raise RuntimeError(f"no free call id after {ID_TRIES} tries")


def _claim(engine: sa.Engine, request: str, attempt: int, *, number: str, seat: str, by: str, channel_id: str,
           now: datetime) -> Dial:
    token = uuid.uuid4().hex
    fields = {"state": "dialing", "number": number[:32], "seat": seat[:16], "requested_by": by[:64], "token": token,
              "channel_id": channel_id, "error": "", "claimed_at": now, "lease_until": now + LEASE,
              "dialled_at": None}
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    new = (insert(TABLE).values(request=request, attempt=attempt, **fields)
           .on_conflict_do_nothing(index_elements=["request", "attempt"]).returning(TABLE.c.id))
    # an attempt Asterisk refused rang nobody: the same attempt may be dialled again
    again = (sa.update(TABLE).where(TABLE.c.request == request, TABLE.c.attempt == attempt, TABLE.c.state == "failed")
             .values(**fields).returning(TABLE.c.id))
    for stmt in (new, again):
        with engine.begin() as conn:  # one statement a transaction: its result says who won
            row_id = conn.execute(stmt).scalar_one_or_none()
        if row_id is not None:
            return Dial(row_id, request, attempt, token, channel_id)
    standing = latest(engine, request, now)
    raise AlreadyDialled(_refusal(standing), standing)


class Refused(Exception):
    """The switch refused the Originate: nobody rang (the attempt is ``failed``, dialable again)."""


class Unanswered(Exception):
    """The switch did not answer the Originate: it may have left (the attempt is ``unknown``)."""


async def dial(engine: sa.Engine, actions: CtiActions, request: str, after: int, *, seat: str, number: str, by: str,
               call_id: str = "") -> tuple[Dial, ActionResult]:
    """Claim the attempt, then Originate the call under the id stored with the claim, then record
    how it went: :class:`AlreadyDialled` before anything rings, :class:`Refused` or
    :class:`Unanswered` after."""
    mine = await asyncio.to_thread(claim, engine, request, after, number=number, seat=seat, by=by,
                                   new_id=actions.new_call_id)
    try:
        result = await actions.originate_callback(seat, number, call_id=call_id, channel_id=mine.channel_id)
    except (ActionFailed, AmiNotSent) as exc:
        await asyncio.to_thread(finish, engine, mine, "failed", f"交换机拒绝了回拨：{exc}")
        raise Refused(str(exc)) from None
    except BaseException as exc:  # no answer, the link lost, the task cancelled: it may have left
        await asyncio.to_thread(finish, engine, mine, "unknown", f"交换机未应答（{type(exc).__name__}：{exc}）"[:500])
        if isinstance(exc, Exception):
            raise Unanswered(str(exc)) from None
        raise
    await asyncio.to_thread(finish, engine, mine, "dialled")
    return mine, result


def finish(engine: sa.Engine, dial: Dial, state: str, error: str = "", now: datetime | None = None) -> bool:
    """Record the Originate's outcome (``dialled``, ``failed`` or ``unknown``); False if the claim
    is no longer this caller's."""
    now = now or datetime.now(UTC)
    change: dict[str, Any] = {"state": state, "error": error[:500], "lease_until": None}
    if state == "dialled":
        change["dialled_at"] = now
    ours = (TABLE.c.id == dial.id, TABLE.c.token == dial.token, TABLE.c.state == "dialing")
    with engine.begin() as conn:
        return conn.execute(sa.update(TABLE).where(*ours).values(**change)).rowcount == 1


def latest(engine: sa.Engine, request: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The request's newest attempt (:func:`view`), or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(TABLE).where(TABLE.c.request == request)
                           .order_by(TABLE.c.attempt.desc()).limit(1)).first()
    return view(CallbackDial.model_validate(row._mapping), now) if row is not None else None


def view(r: CallbackDial, now: datetime | None = None) -> dict[str, Any]:
    """An attempt as the pages see it; a dial whose lease ran out is ``unknown`` (its process died)."""
    now = now or datetime.now(UTC)
    state = r.state
    if state == "dialing" and r.lease_until is not None and r.lease_until < now:
        state = "unknown"
    return {"request": r.request, "attempt": r.attempt, "state": state, "state_label": STATE_LABELS[state],
            "number": r.number, "seat": r.seat, "by": r.requested_by, "call_id": r.channel_id, "error": r.error,
            "at": (r.dialled_at or r.claimed_at).isoformat(),
            # what 再拨一次 sends as ``after``: a failed attempt rang nobody and is dialled again itself
            "redial_after": r.attempt - 1 if state == "failed" else r.attempt}


def _refusal(d: dict[str, Any] | None) -> str:
    if d is None:
        return "回拨记录已变化，请刷新后再试"
    at = datetime.fromisoformat(d["at"]).astimezone(TZ)
    who = f"{d['by']}（坐席 {d['seat']}）"
    if d["state"] == "dialing":
        return f"{who}正在回拨 {d['number']}（第 {d['attempt']} 次），请勿重复拨打"
    if d["state"] == "dialled":
        return f"已由 {who}于 {at:%m-%d %H:%M} 回拨 {d['number']}（第 {d['attempt']} 次）"
    if d["state"] == "unknown":
        return (f"{who}于 {at:%m-%d %H:%M} 的回拨（第 {d['attempt']} 次）结果未知（{d['error'] or '服务中断'}），"
                "对方可能已接到电话")
    return f"第 {d['attempt']} 次回拨未拨出：{d['error']}"

