"""Which outside numbers the centre may have Asterisk dial (toll fraud, issue #13).

Seats' phones dial only the internal plan; the only ways out are the app's Originate (回拨,
回访) and a transfer to a department without a SIP line. Those go only to numbers the centre has
a reason to dial: a number of a ticket (the caller's, or the contact left on it), the number of a
call in the call log (a missed call, a callback request, a voice message), or a department's
directory phone. Anything else is refused before any AMI action is sent.

Numbers are compared normalised (digits, the local area code on bare local numbers), so
"0530-555 1234" on a ticket matches "05305551234" from the console.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from ticketing.callers import normalize_number
from ticketing.context import StoreContext
from ticketing.models import PHONE_IN_TEXT as _PHONE
from ticketing.models import CallRecord, Department, Ticket


class OutsideNumbers:
    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def _norm(self, raw: str) -> str:
        return normalize_number(raw, self.ctx.area_code)

    def may_call_back(self, number: str) -> bool:
        """A number of a ticket or of a call in the log."""
        n = self._norm(number)
        if not n:
            return False
        with Session(self.ctx.engine) as s:
            if s.exec(select(CallRecord.id).where(CallRecord.caller_number == n).limit(1)).first() is not None:
                return True
            if s.exec(select(Ticket.id).where(Ticket.caller_number == n).limit(1)).first() is not None:
                return True
            # the contact is free text ("0530-5551234 王先生"): candidates by their last digits, then exact
            tail = n[-7:]
            contacts = s.exec(select(Ticket.contact).where(Ticket.contact.contains(tail[-4:]))  # type: ignore[attr-defined]
                              .limit(500))
            return any(self._norm(found) == n for c in contacts for found in _PHONE.findall(c or ""))

    def department_number(self, number: str) -> bool:
        """A department's SIP line or one of its directory phones (active departments only)."""
        n = self._norm(number)
        if not n:
            return False
        with Session(self.ctx.engine) as s:
            rows = s.exec(select(Department.phones, Department.sip_line).where(
                Department.active.is_(True),  # type: ignore[attr-defined]
                sa.or_(Department.sip_line == number, Department.phones.contains(n[-4:]))))  # type: ignore[attr-defined]
            for phones, line in rows:
                if line and line == number:
                    return True
                if any(self._norm(found) == n for found in _PHONE.findall(phones or "")):
                    return True
        return False
