"""Tickets out as a spreadsheet (CSV for Excel, or XLSX), confidential reporters always masked."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import select

from hotline.db import session_scope
from hotline.sheets import table_bytes
from ticketing.calendar import TZ
from ticketing.context import StoreContext, role_of
from ticketing.models import Ticket
from ticketing.schemas import Actor, Forbidden, InvalidInput, TicketQuery, parse
from ticketing.tickets import Tickets

EXPORT_MAX = 50000
HEADER = ["工单编号", "状态", "受理时间", "来电号码", "来电人", "联系方式", "类别", "保密", "标题", "区县", "事发地点",
          "诉求", "承办单位", "办理时限", "时限状态", "满意度"]


class Exporter:
    def __init__(self, ctx: StoreContext, tickets: Tickets) -> None:
        self.ctx = ctx
        self.tickets = tickets

    def export(self, query: TicketQuery | Mapping[str, Any] | None, actor: Actor, fmt: str = "csv") -> bytes:
        """The tickets a search finds (at most ``EXPORT_MAX``); every confidential one is masked and
        its read logged as an export."""
        if role_of(actor) not in ("lead", "qa", "admin"):
            raise Forbidden("只有值班长、质检和管理员可以导出工单")
        if fmt not in ("csv", "xlsx"):
            raise InvalidInput(["导出格式须为 csv 或 xlsx"])
        q = query if isinstance(query, TicketQuery) else parse(TicketQuery, dict(query or {}))
        now = self.ctx.clock()
        source, where, order = self.tickets.query(q, actor, now)
        with session_scope(self.ctx.engine) as s:
            rows = s.exec(select(Ticket).select_from(source).where(*where).order_by(*order).limit(EXPORT_MAX)).all()
            reads = self.tickets.reads(s, rows, actor, now, purpose="export", force_mask=True)
        table = [[
            r.number, r.status_label, _fmt(r.created_at), r.caller_number, r.caller_name, r.contact, r.category,
            "是" if r.confidential else "否", r.title, r.district, r.matter_place, r.matter_demand,
            "、".join(d.name for d in r.departments), _fmt(r.current_due), r.deadline_label, r.satisfaction,
        ] for r in reads]
        return table_bytes(fmt, "工单", HEADER, table)


def _fmt(moment: datetime | None) -> str:
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if moment else ""
