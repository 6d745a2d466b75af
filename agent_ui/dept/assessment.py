"""A department's own assessment (考核) for one month: the score the lead's reports give it, with
each deduction and bonus and the tickets behind them.

The figures are the reports' own (``agent_ui.reports.department_tallies`` and ``assess`` over the
store's ticket facts and the centre's hand-entered items), so the portal and the lead's report
never disagree. Only this department's tally leaves here. Synchronous (thread pool).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from agent_ui import reports
from agent_ui.lead import LeadStore
from ticketing.store import Store

TICKETS_PER_ITEM = 50  # the portal lists the first ones; the count is always the whole
_KEY_OF = {label: key for key, (label, _pts) in (reports.DEDUCTIONS | reports.BONUSES).items()}


def own_assessment(store: Store, engine: sa.Engine, department_id: int, month: date, tz: ZoneInfo) -> dict[str, Any]:
    name = store.directory.get(department_id).name
    period = reports.period_for("month", month, tz)
    now = store.ctx.clock()
    facts = [f for f in store.digest.facts(period.start, period.end) if f.department == name]
    entered = LeadStore(engine).entered(period.start.date(), period.end.date()).get(name)
    tallies = reports.department_tallies(facts, period, now, {name: entered} if entered else None)
    tally = tallies[0] if tallies else reports.DepartmentTally(name)
    result = reports.assess(tally)
    behind: dict[str, list[dict[str, Any]]] = defaultdict(list)  # item → the tickets that count in it
    for fact in facts:
        for one in reports.department_tallies([fact], period, now):  # the same rule, ticket by ticket
            for key, n in one.counts.items():
                if n and len(behind[key]) < TICKETS_PER_ITEM:
                    behind[key].append({"id": fact.id, "title": fact.title, "count": n})
    for line in (*result["deductions"], *result["bonuses"]):
        key = _KEY_OF.get(line["item"], "")
        line["key"] = key
        line["entered"] = key in reports.MANUAL  # entered by the centre: no ticket to show
        line["tickets"] = behind.get(key, [])
    return result | {"period": {"start": period.start.isoformat(), "end": period.end.isoformat(),
                                "label": f"{month.year}年{month.month}月"}, "tickets": len(facts)}
