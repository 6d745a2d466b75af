"""Ticket status query (工单查询) by DTMF: the ticket number, then the query code given at intake;
the state and the expected date are said only when both are right.

A wrong code and an unknown number get the same "not found", so the line tells a stranger
nothing about which tickets exist. Only the state and the date are said, never the content.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

from agi.channel import Channel
from agi.flows.common import say_number

log = logging.getLogger("agi.flows.status")

# statuses a citizen can hear (prompts hotline/status/<value>); drafts do not exist for them
SPOKEN = ("registered", "transferred", "returned", "accepted", "in_progress", "extension_requested", "replied",
          "satisfied", "unsatisfied", "closed", "archived")
FINISHED = frozenset({"replied", "satisfied", "unsatisfied", "closed", "archived"})


@dataclass(frozen=True)
class TicketStatus:
    number: str
    status: str
    due: date | None  # expected completion (local day), None when finished or unknown


FindTicket = Callable[[str, str], Awaitable["TicketStatus | None"]]  # (number, query code)


def said(t: TicketStatus) -> list[str]:
    """
    >>> said(TicketStatus("20261123000001", "in_progress", date(2026, 12, 1)))[:3]
    ['hotline/status-is', 'hotline/status/in_progress', 'hotline/status-due']
    >>> said(TicketStatus("20261123000001", "in_progress", date(2026, 12, 1)))[3:]
    ['digits/10', 'digits/2', 'hotline/month', 'digits/1', 'hotline/day']
    >>> said(TicketStatus("20261123000001", "closed", None))
    ['hotline/status-is', 'hotline/status/closed']
    """
    out = ["hotline/status-is", f"hotline/status/{t.status}"]
    if t.due is not None and t.status not in FINISHED:
        out += ["hotline/status-due", *say_number(t.due.month), "hotline/month", *say_number(t.due.day),
                "hotline/day"]
    return out


def plausible(digits: str) -> bool:
    """Ticket numbers are digits only, 6 to 20 of them (YYYYMMDD + sequence).

    >>> plausible("20261123000001"), plausible("12"), plausible("1" * 30), plausible("")
    (True, False, False, False)
    """
    return digits.isdigit() and 6 <= len(digits) <= 20


def plausible_code(digits: str) -> bool:
    """Query codes are digits, 4 to 16 of them (six today).

    >>> plausible_code("042917"), plausible_code("12"), plausible_code("")
    (True, False, False)
    """
    return digits.isdigit() and 4 <= len(digits) <= 16


async def status_query(ch: Channel, find: FindTicket, tries: int = 3, timeout_ms: int = 8000) -> TicketStatus | None:
    """``AGI(agi://…/status)``: ask for the number and the query code (each ended by #), look them
    up together, say the state; three tries. Whatever was wrong, the caller hears the same "not found"."""
    for n in range(1, tries + 1):
        digits = (await ch.get_data("hotline/status-ask", timeout_ms, 20)).strip("#*")
        log.info("status query uid=%s try=%d digits=%s", ch.env.uniqueid, n, digits[:24])
        found = None
        if plausible(digits):
            # asked whatever the number: whether a code is asked for says nothing of the ticket
            code = (await ch.get_data("hotline/status-code-ask", timeout_ms, 16)).strip("#*")
            if plausible_code(code):
                found = await find(digits, code)
            if found is not None and found.status not in SPOKEN:
                found = None
        if found is not None:
            await ch.play(*said(found), "hotline/goodbye")
            log.info("status query uid=%s ticket=%s status=%s", ch.env.uniqueid, found.number, found.status)
            return found
        if digits or n < tries:
            await ch.play("hotline/status-notfound" if digits else "hotline/invalid")
    await ch.play("hotline/goodbye")
    return None
