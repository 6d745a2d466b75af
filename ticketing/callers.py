"""Callers: one normal form for numbers, the place a number belongs to, the flags leads set on a
number (骚扰, 重点单位, 老年人), and the pre-queue lookup the AGI asks before every call."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

import phonenumbers
import sqlalchemy as sa
from phonenumbers import geocoder
from sqlmodel import Session, select

from hotline.db import session_scope
from ticketing.context import StoreContext, role_of
from ticketing.db import PreparedQuery
from ticketing.deadlines import state
from ticketing.models import Caller, ConfidentialRead, Status, Ticket, UTCDateTime
from ticketing.schemas import Actor, CallerFlags, CallerSummary, Forbidden, InvalidInput, RecentTicket

CLOSED = (Status.CLOSED, Status.ARCHIVED)
OPEN_STATUSES = [st.value for st in Status if st not in (*CLOSED, Status.DRAFT)]
_LABELS = {st.value: st.label for st in Status}

_NON_DIGITS = re.compile(r"[^\d]")


def normalize_number(raw: str, area_code: str = "0530") -> str:
    """Digits only, without the country prefix; bare local numbers get the local area code.

    >>> normalize_number('+86 138-0013-8000')
    '13800138000'
    >>> normalize_number('5551234')
    '05305551234'
    >>> normalize_number('0086530 5551234')
    '05305551234'
    """
    raw = raw or ""
    digits = raw if raw.isdecimal() else _NON_DIGITS.sub("", raw)  # [^\d] keeps what isdecimal() accepts
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 10:
            digits = digits[len(prefix) :]
            if not digits.startswith("1"):
                digits = "0" + digits  # +86 530 … is 0530 … at home
            break
    if len(digits) in (7, 8) and not digits.startswith(("0", "1")):
        digits = area_code + digits
    return digits


@lru_cache(maxsize=4096)
def location_of(number: str) -> str:
    """Province and city of a mobile or landline number ("山东省菏泽市"), or ""."""
    if not number or not number.isdigit():
        return ""
    try:
        parsed = phonenumbers.parse(number, "CN")
    except phonenumbers.NumberParseException:
        return ""
    return geocoder.description_for_number(parsed, "zh") or ""


def touch_caller(s: Session, number: str, name: str, now: datetime | None) -> Caller:
    """The caller's row, made on first sight; ``now`` (when given) is when they were last seen."""
    c = s.exec(select(Caller).where(Caller.number == number)).first()
    if c is None:
        c = Caller(number=number, location=location_of(number), first_seen=now)
        s.add(c)
    if name:
        c.name = name
    if now is not None:
        c.last_seen = now
    return c


class Callers:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self._lookup = PreparedQuery(ctx.engine, _lookup_statement())
        self._read_log = _ReadLog(ctx.engine)

    def summary(self, number: str, limit: int = 5) -> CallerSummary:
        """The AGI pre-queue lookup: counts, flags and the latest tickets of a number.

        One prepared read on the (caller_number, created_at) index: no ORM objects, no scan.
        """
        ctx = self.ctx
        n = normalize_number(number, ctx.area_code)
        now = ctx.clock()
        since = now - ctx.duplicate_window
        found = self._lookup.all(n=n, since=since, lim=limit)
        first = found[0]
        total, open_, recent30 = first.total, first.open, first.r30
        caller = first if first.location is not None else None
        rows = [r for r in found if r.id is not None]
        secret = [r.id for r in rows if r.confidential]
        if secret:  # the lookup reads confidential tickets too: log it like any other read
            self._read_log.write(secret, now)
        cal = ctx.calendar() if any(r.current_due is not None for r in rows) else None  # a closed history needs none
        recent = [
            RecentTicket(r.id, r.number or "", r.status, _LABELS[r.status], r.category, r.title, r.created_at,
                         "none" if cal is None or r.current_due is None
                         else state(r.current_due, now, cal, ctx.limits.yellow_days).value)
            for r in rows
        ]
        return CallerSummary(
            number=n,
            location=caller.location if caller else location_of(n),
            blacklisted=bool(caller and caller.blacklisted),
            vip=bool(caller and caller.vip),
            elderly=bool(caller and caller.elderly),
            total=int(total),
            open=int(open_),
            recent_30d=int(recent30),
            repeat=int(recent30) > 0,
            recent=recent,
        )

    def set_flags(
        self,
        number: str,
        actor: Actor,
        *,
        blacklisted: bool | None = None,
        vip: bool | None = None,
        elderly: bool | None = None,
        note: str | None = None,
    ) -> CallerFlags:
        """A lead marks a number (None keeps a flag as it is); the AGI lookup reads the flags on the
        next call: a harassment number hears the warning, the elderly and special units go ahead."""
        if role_of(actor) not in ("lead", "admin"):
            raise Forbidden("只有值班长和管理员可以设置来电标记")
        n = normalize_number(number, self.ctx.area_code)
        if not 5 <= len(n) <= 20:
            raise InvalidInput(["号码应为 5 到 20 位数字"])
        now = self.ctx.clock()
        with session_scope(self.ctx.engine) as s:
            c = touch_caller(s, n, "", None)
            for name, value in (("blacklisted", blacklisted), ("vip", vip), ("elderly", elderly)):
                if value is not None:
                    setattr(c, name, value)
            if note is not None:
                c.note = note[:200]
            c.flags_by, c.flags_at = actor.username, now
            s.flush()
            return _flags(c)

    def flagged(self, actor: Actor) -> list[CallerFlags]:
        """Every number with a flag, the most recently marked first (the lead's 特殊号码 page)."""
        if role_of(actor) not in ("lead", "admin"):
            raise Forbidden("只有值班长和管理员可以查看来电标记")
        flagged = sa.or_(Caller.blacklisted.is_(True), Caller.vip.is_(True), Caller.elderly.is_(True))
        with Session(self.ctx.engine) as s:
            rows = s.exec(select(Caller).where(flagged).order_by(Caller.flags_at.desc(), Caller.number))
            return [_flags(c) for c in rows]


class _ReadLog:
    """The lookup's confidential-read rows, written as :class:`~ticketing.db.PreparedQuery` reads:
    compiled once, bound through the column types, run on a pooled DBAPI connection (SQLAlchemy's
    per-statement work costs more than the insert, on the path every caller waits on)."""

    def __init__(self, engine: sa.Engine) -> None:
        dialect = engine.dialect
        compiled = sa.insert(ConfidentialRead).values(
            ticket_id=sa.bindparam("ticket_id", type_=sa.Integer), at=sa.bindparam("at", type_=UTCDateTime),
            username="agi", role="system", purpose="caller_lookup", masked=False,
        ).compile(dialect=dialect)
        self.engine, self.sql, self.positional = engine, compiled.string, compiled.positional
        self.order = list(compiled.positiontup or compiled.binds)
        self.binds = {name: (bp.type.dialect_impl(dialect).bind_processor(dialect), bp.value)
                      for name, bp in compiled.binds.items()}

    params = PreparedQuery.params  # the same binding: defaults, then each type's processor

    def write(self, ticket_ids: list[int], at: datetime) -> None:
        rows = [self.params({"ticket_id": i, "at": at}) for i in ticket_ids]
        conn = self.engine.raw_connection()
        try:
            cur = conn.cursor()
            try:
                cur.executemany(self.sql, rows)
            finally:
                cur.close()
            conn.commit()
        finally:
            conn.close()  # back to the pool, rolled back there if the insert failed


def _flags(c: Caller) -> CallerFlags:
    return CallerFlags(c.number, c.location, c.name, c.blacklisted, c.vip, c.elderly, c.note, c.flags_by,
                       c.flags_at, c.last_seen)


@lru_cache(maxsize=1)
def _lookup_statement() -> sa.Select:
    """The AGI lookup in one round trip (counts, the latest tickets, the caller's flags).

    Built once and run as a :class:`~ticketing.db.PreparedQuery`: composing and executing it
    through SQLAlchemy costs more than running it on SQLite.
    """
    T = Ticket.__table__.c
    n, since = sa.bindparam("n", type_=sa.String), sa.bindparam("since", type_=UTCDateTime)
    open_ = [sa.literal_column(f"'{s}'") for s in sorted(OPEN_STATUSES)]
    agg = (
        sa.select(
            sa.func.count().label("total"),
            # the statuses inline (our own constants): an expanding IN would be re-rendered on every call
            sa.func.coalesce(sa.func.sum(sa.case((T.status.in_(open_), 1), else_=0)), 0).label("open"),
            sa.func.coalesce(sa.func.sum(sa.case((T.created_at >= since, 1), else_=0)), 0).label("r30"),
        )
        .where(T.caller_number == n)
        .subquery("agg")
    )
    rec = (
        sa.select(T.id, T.number, T.status, T.category, T.title, T.created_at, T.current_due, T.confidential)
        .where(T.caller_number == n)
        .order_by(T.caller_number.desc(), T.created_at.desc())
        .limit(sa.bindparam("lim", type_=sa.Integer))
        .subquery("rec")
    )
    who = (
        sa.select(Caller.location, Caller.blacklisted, Caller.vip, Caller.elderly)
        .where(Caller.number == n)
        .subquery("who")
    )
    return (
        sa.select(agg, rec, who)
        .select_from(agg.outerjoin(rec, sa.true()).outerjoin(who, sa.true()))
        .order_by(rec.c.created_at.desc())
    )
