"""The desk's filters and saved views, told as the ticket store's query.

One row of filters (状态 · 颜色 · 承办单位 · 分类 · 时间 · 号码 · 全文) and the saved views (我的工单 ·
今日超期 · 待回访) become one :class:`DeskQuery`; the table reads a page of it and the export link
sends the same store query, so what is exported is what is shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from hotline.identity import Principal
from hotline.params import DbId, parse_id
from ticketing.calendar import TZ
from ticketing.models import Category
from ticketing.schemas import SORTS

TICKET_NUMBER = re.compile(r"^[0-9]{14}$")  # yyyymmdd + six digits: how the store numbers tickets
PHONE = re.compile(r"^\+?[0-9\- ]{3,32}$")  # ASCII digits: "\d" would take "١٢٣" too
COLOURS = ("green", "yellow", "red", "none")
VIEWS = ("all", "mine", "overdue", "callback")  # 督办中 is the supervision list, not a ticket query
MAX_PER_PAGE = 100


class BadFilter(ValueError):
    """A filter the desk cannot use; the message is shown to the user as is."""


class DeskParams(BaseModel):
    """The query string :func:`desk_query` reads, for the OpenAPI description (it reads it raw, to
    refuse in Chinese)."""

    view: Literal[VIEWS] = "all"  # type: ignore[valid-type]
    status: list[str] = Field(default_factory=list, description="可重复，或以逗号分隔")
    colour: Literal[COLOURS] | None = None  # type: ignore[valid-type]
    department_id: DbId | None = None
    category: Category | None = None
    date_from: date | None = None
    date_to: date | None = None
    number: str = Field("", max_length=100, description="14位工单编号或来电号码")
    q: str = Field("", max_length=100)
    sort: Literal[SORTS] = "-created_at"  # type: ignore[valid-type]
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(20, ge=1, le=MAX_PER_PAGE)


@dataclass(frozen=True, slots=True)
class DeskQuery:
    store: dict[str, Any]  # TicketQuery fields, paging left out (the export takes every match)
    page: int
    per_page: int
    mine: str = ""  # 我的工单: the operator field of my tickets (job number, else user name)

    def page_query(self) -> dict[str, Any]:
        return self.store | {"page": self.page, "per_page": self.per_page}


def desk_query(params: Mapping[str, Any], statuses: Sequence[str], who: Principal) -> DeskQuery:
    """The store query for the desk's ``params`` (strings, as a query string gives them)."""
    view = _text(params, "view") or "all"
    if view not in VIEWS:
        raise BadFilter("视图取值无效，可选：" + "、".join(VIEWS))
    q: dict[str, Any] = {"sort": _text(params, "sort") or "-created_at"}
    if statuses:
        q["status"] = list(statuses)
    colour = _text(params, "colour")
    if colour:
        if colour not in COLOURS:
            raise BadFilter("颜色取值无效，可选：green（正常）、yellow（临期）、red（超期）、none（无时限）")
        q["deadline_state"] = colour
    if dept := _text(params, "department_id"):
        q["department_id"] = _int(dept, "承办单位")
    if category := _text(params, "category"):
        if category not in {c.value for c in Category}:
            raise BadFilter("分类取值无效，可选：" + "、".join(c.value for c in Category))
        q["category"] = category
    if day := _text(params, "date_from"):
        q["created_from"] = _midnight(_day(day)).isoformat()
    if day := _text(params, "date_to"):
        last = _day(day)
        if last == date.max:
            raise BadFilter("日期超出范围")
        q["created_to"] = _midnight(last + timedelta(days=1)).isoformat()  # the whole last day
    if number := _text(params, "number").replace(" ", ""):
        if TICKET_NUMBER.match(number):
            q["number"] = number
        elif PHONE.match(number):
            q["caller_number"] = number.replace("-", "")
        else:
            raise BadFilter("号码应为14位工单编号或来电号码")
    if text := _text(params, "q"):
        q["q"] = text
    mine = ""
    if view == "overdue":
        q["deadline_state"] = "red"
    elif view == "callback":
        q["status"] = ["replied"]
    elif view == "mine":
        mine = who.job_number or who.username
    if view in ("overdue", "callback") and not _text(params, "sort"):
        q["sort"] = "current_due"  # the most urgent first
    page = _int(_text(params, "page") or "1", "页码")
    per_page = min(_int(_text(params, "per_page") or "20", "每页条数"), MAX_PER_PAGE)
    return DeskQuery(q, max(page, 1), max(per_page, 1), mine)


def _text(params: Mapping[str, Any], key: str) -> str:
    value = params.get(key) or ""
    if len(value) > 100:
        raise BadFilter("筛选条件过长（最多100个字）")
    return value.strip()


def _int(raw: str, what: str) -> int:
    found = parse_id(raw)  # ASCII digits ("²".isdigit() is true), within what the database holds
    if found is None:
        raise BadFilter(f"{what}应为正整数")
    return found


def _day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadFilter("日期格式应为 2026-11-22") from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), TZ)  # the centre's day, Beijing time
