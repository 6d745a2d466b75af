"""Pre-queue lookup: who is calling, and where the call goes (no menu: queue unless closed).

``decide`` is pure (the rules); ``lookup`` is the flow: it asks the store with a deadline and
writes the variables in one pipelined batch. The store failing or being slow never holds the
caller: the call goes on with empty variables and the failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from agi.channel import Channel
from agi.flows.common import clean_number
from agi.flows.hours import ServiceHours

log = logging.getLogger("agi.flows.lookup")

# What the screen-pop gets (inherited with __ so the seat's channel carries them into AgentCalled)
INHERITED = ("HL_LOCATION", "HL_TICKETS", "HL_OPEN", "HL_OVERDUE", "HL_RECENT", "HL_REPEAT", "HL_FLAGS",
             "HL_PRIORITY")
CLOSED_STATUSES = frozenset({"closed", "archived", "draft"})
_DEFAULTS = {"HL_ROUTE": "queue", "HL_LOOKUP": "ok"}  # what the dialplan assumes when a variable is not set
TITLE_CHARS = 24  # the pop's history line; the whole ticket is one click away
# separators of HL_RECENT, and what ARRAY() would alter: their full-width twins read the same in Chinese
_FIELD_SAFE = str.maketrans({",": "，", ":": "：", '"': "＂", "\\": "＼", "(": "（", ")": "）"})
_FIELD_UNSAFE = re.compile(r'[,:"\\()]')

Summarize = Callable[[str], Awaitable[Any]]  # number → ticketing.schemas.CallerSummary


@dataclass(frozen=True)
class LookupConfig:
    hours: ServiceHours = field(default_factory=lambda: ServiceHours.parse("00:00-24:00"))
    timezone: str = "Asia/Shanghai"
    area_code: str = "0530"
    repeat_days: int = 7
    timeout_s: float = 0.3
    blacklist: str = "warn"  # warn | reject | ignore
    elderly: frozenset[str] = frozenset()
    priority_elderly: int = 10
    priority_overdue_repeat: int = 10
    priority_vip: int = 5
    priority_repeat: int = 3
    overflow_wait_s: int = 120


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def decide(summary: Any | None, number: str, cfg: LookupConfig, now: datetime,
           seats_logged: int | None) -> dict[str, str]:
    """The channel variables for one call (pure). ``summary`` None: unknown or lookup failed.

    ``seats_logged`` None means "not known" (the dialplan did not say): then assume some.
    """
    route, reason = "queue", ""
    if not cfg.hours.always and not cfg.hours.open_at(now.astimezone(ZoneInfo(cfg.timezone)).time()):
        route, reason = "closed", "after_hours"
    elif seats_logged == 0:
        route, reason = "closed", "no_seat"
    out = {"HL_ROUTE": route, "HL_REASON": reason, "HL_QTIMEOUT": str(cfg.overflow_wait_s)}
    if summary is None:
        return out
    recent = list(getattr(summary, "recent", []) or [])
    overdue = [t for t in recent if t.deadline_state == "red" and t.status not in CLOSED_STATUSES]
    newest = max((_aware(t.created_at) for t in recent), default=None)
    repeat = newest is not None and now - newest <= timedelta(days=cfg.repeat_days)
    elderly = number in cfg.elderly or bool(getattr(summary, "elderly", False))  # settings, or a lead's flag
    flags = [name for name, on in (("blacklist", summary.blacklisted), ("vip", summary.vip), ("elderly", elderly),
                                   ("repeat", repeat), ("overdue", bool(overdue))) if on]
    priority = max([0]
                   + ([cfg.priority_elderly] if elderly else [])
                   + ([cfg.priority_overdue_repeat] if repeat and overdue else [])
                   + ([cfg.priority_vip] if summary.vip else [])
                   + ([cfg.priority_repeat] if repeat else []))
    if summary.blacklisted and cfg.blacklist != "ignore" and route == "queue":
        route = "harass" if cfg.blacklist == "warn" else "reject"
        priority = 0  # a warned number never jumps the queue
    out.update({
        "HL_ROUTE": route,
        "HL_LOCATION": summary.location or "",
        "HL_TICKETS": str(summary.total),
        "HL_OPEN": str(summary.open),
        "HL_OVERDUE": str(len(overdue)),
        "HL_RECENT": recent_field(recent[:5]),
        "HL_REPEAT": "1" if repeat else "0",
        "HL_FLAGS": ",".join(flags),
        "HL_PRIORITY": str(priority),
    })
    return out


def recent_field(recent: list[Any]) -> str:
    """The caller's latest tickets for the screen-pop, newest first:
    ``number:deadline-state:status:category:title`` each, comma separated.

    >>> from types import SimpleNamespace as T
    >>> recent_field([T(number="20261120000042", deadline_state="red", status_label="已转办", category="投诉举报",
    ...                 title='小区(东门)噪音: 夜间施工, "每天"')])
    '20261120000042:red:已转办:投诉举报:小区（东门）噪音： 夜间施工， ＂每天＂'
    """
    return ",".join(":".join([t.number, t.deadline_state or "none", _field(t.status_label), _field(t.category),
                              _field(t.title[:TITLE_CHARS])]) for t in recent if t.number)


@lru_cache(maxsize=4096)  # status words and categories are few; titles come back with their callers
def _field(text: str) -> str:
    text = str(text)
    if _FIELD_UNSAFE.search(text):  # seldom: a search in C spares translating every field
        text = text.translate(_FIELD_SAFE)
    return " ".join(text.split())


def channel_variables(decided: dict[str, str]) -> dict[str, str]:
    """Inherited names get ``__``, so AgentCalled on the seat's channel carries them."""
    return {(f"__{k}" if k in INHERITED else k): v for k, v in decided.items()}


async def lookup(ch: Channel, summarize: Summarize, cfg: LookupConfig,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict[str, str]:
    """The flow behind ``AGI(agi://…/lookup)``; HL_SEATS holds the number of signed-in seats."""
    number = clean_number(ch.env.callerid, cfg.area_code)

    async def ask() -> Any:
        async with asyncio.timeout(cfg.timeout_s):  # unlike wait_for (3.11), no extra task
            return await summarize(number)

    summary = None
    status = "unknown_number"
    if ch.env.args:  # the dialplan passed the signed-in seats (the usual way): nothing to overlap
        arg = ch.env.args[0]
        if number:
            summary, status = await _answer(ch, ask(), cfg)
    else:  # the store works while we ask Asterisk how many seats are signed in
        pending = asyncio.ensure_future(ask()) if number else None
        try:
            arg = await ch.get_variable("HL_SEATS")
        except BaseException:
            if pending is not None:
                pending.cancel()
            raise
        if pending is not None:
            summary, status = await _answer(ch, pending, cfg)
    seats = int(arg) if arg.strip().isdigit() else None
    decided = decide(summary, number, cfg, clock(), seats)
    decided["HL_LOOKUP"] = status
    # each SET is one round trip to Asterisk: leave out what the dialplan takes as the default
    # (empty values, the queue route, a lookup that went well)
    await ch.set_variables(channel_variables({k: v for k, v in decided.items() if v and _DEFAULTS.get(k) != v}))
    return decided


async def _answer(ch: Channel, asked: Awaitable[Any], cfg: LookupConfig) -> tuple[Any | None, str]:
    """The store's summary and how the lookup went; a failure is logged, never raised."""
    try:
        return await asked, "ok"
    except TimeoutError:
        log.warning("lookup timeout uid=%s after=%.0fms", ch.env.uniqueid, cfg.timeout_s * 1000)
        return None, "timeout"
    except Exception as exc:  # the store is down, a bug…: the caller still reaches the queue
        log.warning("lookup failed uid=%s error=%s", ch.env.uniqueid, type(exc).__name__ + ": " + str(exc)[:120])
        return None, "failed"
